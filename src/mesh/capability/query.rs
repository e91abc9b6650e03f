//! `find_nodes` and `find_best_node` over the index (MESH2.md §3.4), with
//! their JSON forms for the C ABI.
//!
//! `find_nodes` returns every live indexed node (the local one included)
//! that is in scope and matches the filter — sorted by node id, where v0.11
//! leaves the order unspecified. `find_best_node` returns the matching node
//! with the highest score; ties go to the lowest node id (v0.11: arbitrary).
//!
//! Scoring is a trait, [`NodeScorer`], so the behaviour plane (COMPUTE.md
//! §4) can add load, proximity or health terms; [`ScoringWeights`] is the
//! v0.11 score: `1 + w_mem·min(mem/262 144 MiB, 1) + w_vram·min(vram/81 920
//! MiB, 1) + w_speed·min(max tokens/s ÷ 1000, 1) + w_loaded·(loaded ÷
//! models, 0 without models)`, weights clamped to [0, 1].

use serde::{Deserialize, Serialize};

use super::filter::CapabilityFilter;
use super::index::{CapabilityIndex, IndexedNode};
use super::scope::{QueryScope, SubnetView};

/// Memory at which the memory term saturates (256 GiB), MiB.
pub const MEMORY_SCORE_FULL_MB: f64 = 262_144.0;
/// VRAM at which the VRAM term saturates (80 GiB), MiB.
pub const VRAM_SCORE_FULL_MB: f64 = 81_920.0;
/// Throughput at which the speed term saturates, tokens/s.
pub const SPEED_SCORE_FULL_TPS: f64 = 1_000.0;

/// Scores a node that passed the filter and the scope. Higher is better;
/// a score ≤ 0 (or NaN) never wins.
pub trait NodeScorer {
    /// The node's score.
    fn score(&self, node: &IndexedNode) -> f64;
}

/// The v0.11 score's weights (each clamped to [0, 1] when used; NaN = 0).
/// JSON: `{"memory":0.5,"vram":1,"speed":0,"loaded":0.25}`, every member
/// optional (default 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoringWeights {
    /// Weight of memory.
    pub memory: f64,
    /// Weight of total VRAM.
    pub vram: f64,
    /// Weight of the fastest model's tokens/s.
    pub speed: f64,
    /// Weight of the fraction of models loaded.
    pub loaded: f64,
}

fn clamp_weight(weight: f64) -> f64 {
    if weight.is_nan() {
        0.0
    } else {
        weight.clamp(0.0, 1.0)
    }
}

impl NodeScorer for ScoringWeights {
    fn score(&self, node: &IndexedNode) -> f64 {
        let caps = &node.announcement.capabilities;
        let memory = f64::from(caps.hardware.memory_mb) / MEMORY_SCORE_FULL_MB;
        let vram = caps.hardware.total_vram_mb() as f64 / VRAM_SCORE_FULL_MB;
        let max_tps = caps
            .models
            .iter()
            .map(|m| m.tokens_per_sec)
            .max()
            .unwrap_or(0);
        let speed = f64::from(max_tps) / SPEED_SCORE_FULL_TPS;
        let loaded = if caps.models.is_empty() {
            0.0
        } else {
            caps.models.iter().filter(|m| m.loaded).count() as f64 / caps.models.len() as f64
        };
        1.0 + clamp_weight(self.memory) * memory.min(1.0)
            + clamp_weight(self.vram) * vram.min(1.0)
            + clamp_weight(self.speed) * speed.min(1.0)
            + clamp_weight(self.loaded) * loaded
    }
}

/// A `find_nodes` query. JSON: `{"filter":{…},"scope":"any"}`, both
/// members optional (the empty filter, scope Any).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeQuery {
    /// Capability constraints.
    pub filter: CapabilityFilter,
    /// Whom to consider.
    pub scope: QueryScope,
}

/// A `find_best_node` query. JSON: `{"filter":{…},"scope":…,"weights":{…}}`,
/// every member optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BestNodeQuery {
    /// Capability constraints.
    pub filter: CapabilityFilter,
    /// Whom to consider.
    pub scope: QueryScope,
    /// The v0.11 score's weights.
    pub weights: ScoringWeights,
}

/// Why a JSON query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// Not a valid query; the message names the bad member or value.
    #[error("invalid capability query: {0}")]
    InvalidJson(String),
}

impl NodeQuery {
    /// Parses the JSON form.
    ///
    /// # Errors
    /// [`QueryError::InvalidJson`] naming the bad member.
    pub fn from_json(json: &str) -> Result<Self, QueryError> {
        serde_json::from_str(json).map_err(|e| QueryError::InvalidJson(e.to_string()))
    }
}

impl BestNodeQuery {
    /// Parses the JSON form.
    ///
    /// # Errors
    /// [`QueryError::InvalidJson`] naming the bad member.
    pub fn from_json(json: &str) -> Result<Self, QueryError> {
        serde_json::from_str(json).map_err(|e| QueryError::InvalidJson(e.to_string()))
    }
}

/// The result of `find_nodes`. JSON: `{"nodes":[<node_id u64>, …]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundNodes {
    /// Matching node ids, ascending.
    pub nodes: Vec<u64>,
}

/// The result of `find_best_node`. JSON: `{"node_id":<u64>,"score":<f64>}`
/// or `{"node_id":null,"score":0.0}` when nothing matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct BestNode {
    /// The winner, if any node matched.
    pub node_id: Option<u64>,
    /// Its score (0 when nothing matched).
    pub score: f64,
}

impl FoundNodes {
    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a list of integers always serialises")
    }
}

impl BestNode {
    /// The JSON form (a non-finite score, from a custom scorer, is 0).
    pub fn to_json(&self) -> String {
        let finite = Self {
            score: if self.score.is_finite() {
                self.score
            } else {
                0.0
            },
            ..*self
        };
        serde_json::to_string(&finite).expect("an integer and a finite float always serialise")
    }
}

/// One indexed node as the C ABI shows it. JSON:
/// `{"node_id":…,"version":…,"timestamp_ns":…,"expires_at_ns":…,
/// "hop_count":…,"reflex_addr":"ip:port"|null,"capabilities":{…wire form…}}`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeCapabilities<'a> {
    /// The node.
    pub node_id: u64,
    /// Its indexed version.
    pub version: u64,
    /// Origin creation time, UNIX ns.
    pub timestamp_ns: u64,
    /// Local expiry, UNIX ns.
    pub expires_at_ns: u64,
    /// Hops the indexed copy had taken.
    pub hop_count: u8,
    /// Its reflexive address, if announced.
    pub reflex_addr: Option<std::net::SocketAddr>,
    /// What it offers (the wire form).
    pub capabilities: &'a super::caps::CapabilitySet,
}

impl<'a> NodeCapabilities<'a> {
    /// The view of one index entry.
    pub fn of(entry: &'a IndexedNode) -> Self {
        let a = &entry.announcement;
        Self {
            node_id: a.node_id,
            version: a.version,
            timestamp_ns: a.timestamp_ns,
            expires_at_ns: entry.expires_at_ns,
            hop_count: a.hop_count,
            reflex_addr: a.reflex_addr,
            capabilities: &a.capabilities,
        }
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("capability sets always serialise")
    }
}

/// The JSON form of every live entry, ascending by node id:
/// `{"nodes":[<NodeCapabilities>, …]}`.
pub fn capabilities_json(index: &CapabilityIndex, now_unix_ns: u64) -> String {
    let mut nodes: Vec<NodeCapabilities<'_>> =
        index.live(now_unix_ns).map(NodeCapabilities::of).collect();
    nodes.sort_unstable_by_key(|n| n.node_id);
    #[derive(Serialize)]
    struct All<'a> {
        nodes: Vec<NodeCapabilities<'a>>,
    }
    serde_json::to_string(&All { nodes }).expect("capability sets always serialise")
}

/// Candidates: live entries that are in scope and match the filter.
fn candidates<'a>(
    index: &'a CapabilityIndex,
    now_unix_ns: u64,
    filter: &'a CapabilityFilter,
    scope: &'a QueryScope,
    subnets: &'a dyn SubnetView,
) -> impl Iterator<Item = &'a IndexedNode> {
    index.live(now_unix_ns).filter(move |entry| {
        let caps = &entry.announcement.capabilities;
        filter.matches(caps) && scope.admits(entry.announcement.node_id, caps, subnets)
    })
}

/// Every live node in `scope` matching `filter`, ascending by node id.
pub fn find_nodes(
    index: &CapabilityIndex,
    now_unix_ns: u64,
    query: &NodeQuery,
    subnets: &dyn SubnetView,
) -> FoundNodes {
    let mut nodes: Vec<u64> = candidates(index, now_unix_ns, &query.filter, &query.scope, subnets)
        .map(|entry| entry.announcement.node_id)
        .collect();
    nodes.sort_unstable();
    FoundNodes { nodes }
}

/// The live node in `scope` matching `filter` with the highest positive
/// score under `scorer` (ties: lowest node id).
pub fn find_best_node(
    index: &CapabilityIndex,
    now_unix_ns: u64,
    filter: &CapabilityFilter,
    scope: &QueryScope,
    scorer: &dyn NodeScorer,
    subnets: &dyn SubnetView,
) -> BestNode {
    let mut best = BestNode::default();
    for entry in candidates(index, now_unix_ns, filter, scope, subnets) {
        let score = scorer.score(entry);
        let node_id = entry.announcement.node_id;
        let better = match best.node_id {
            None => score > 0.0,
            Some(best_id) => score > best.score || (score == best.score && node_id < best_id),
        };
        if better {
            best = BestNode {
                node_id: Some(node_id),
                score,
            };
        }
    }
    best
}

/// [`find_best_node`] for a [`BestNodeQuery`] (its weights as the scorer).
pub fn find_best_node_for(
    index: &CapabilityIndex,
    now_unix_ns: u64,
    query: &BestNodeQuery,
    subnets: &dyn SubnetView,
) -> BestNode {
    find_best_node(
        index,
        now_unix_ns,
        &query.filter,
        &query.scope,
        &query.weights,
        subnets,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::EntityKeypair;
    use crate::mesh::capability::Announcement;
    use crate::mesh::capability::caps::{CapabilitySet, GpuInfo, ModelInfo};
    use crate::mesh::capability::index::IndexLimits;
    use crate::mesh::capability::scope::NoSubnets;

    const NOW: u64 = 1_700_000_000_000_000_000;

    fn node(seed: u8, caps: CapabilitySet) -> Announcement {
        let kp = EntityKeypair::from_seed(&[seed; 32]);
        Announcement::new(*kp.entity_id(), 1, NOW, 300, caps)
    }

    fn caps(memory_mb: u32, vram_mb: Option<u32>, models: &[(u32, bool)]) -> CapabilitySet {
        let mut c = CapabilitySet::default();
        c.hardware.memory_mb = memory_mb;
        c.hardware.gpu = vram_mb.map(|vram_mb| GpuInfo {
            vram_mb,
            ..GpuInfo::default()
        });
        c.models = models
            .iter()
            .map(|(tps, loaded)| ModelInfo {
                tokens_per_sec: *tps,
                loaded: *loaded,
                ..ModelInfo::default()
            })
            .collect();
        c
    }

    fn indexed(c: CapabilitySet) -> IndexedNode {
        IndexedNode::for_tests(node(1, c))
    }

    #[test]
    fn the_v0_11_score() {
        let all = ScoringWeights {
            memory: 1.0,
            vram: 1.0,
            speed: 1.0,
            loaded: 1.0,
        };
        assert_eq!(all.score(&indexed(caps(0, None, &[]))), 1.0);
        let half = caps(131_072, Some(40_960), &[(500, true), (100, false)]);
        assert_eq!(
            all.score(&indexed(half.clone())),
            1.0 + 0.5 + 0.5 + 0.5 + 0.5
        );
        // Terms saturate at 1; weights clamp to [0, 1]; NaN weighs nothing.
        let huge = caps(u32::MAX, Some(u32::MAX), &[(u32::MAX, true)]);
        assert_eq!(all.score(&indexed(huge)), 5.0);
        let wild = ScoringWeights {
            memory: 7.0,
            vram: -3.0,
            speed: f64::NAN,
            loaded: 0.5,
        };
        assert_eq!(wild.score(&indexed(half)), 1.0 + 0.5 + 0.0 + 0.0 + 0.25);
    }

    #[test]
    fn find_nodes_includes_self_and_best_prefers_score_then_low_id() {
        let local = node(9, caps(1, None, &[]));
        let mut index = CapabilityIndex::new(local.node_id, IndexLimits::default());
        index.insert(local.clone(), NOW).unwrap();
        let big = node(1, caps(262_144, None, &[]));
        let small = node(2, caps(1024, None, &[]));
        index.insert(big.clone(), NOW).unwrap();
        index.insert(small.clone(), NOW).unwrap();
        let subnets = NoSubnets {
            local_node_id: local.node_id,
        };
        let all = find_nodes(&index, NOW, &NodeQuery::default(), &subnets);
        let mut expected = vec![local.node_id, big.node_id, small.node_id];
        expected.sort_unstable();
        assert_eq!(all.nodes, expected);
        let query = BestNodeQuery {
            weights: ScoringWeights {
                memory: 1.0,
                ..ScoringWeights::default()
            },
            ..BestNodeQuery::default()
        };
        let best = find_best_node_for(&index, NOW, &query, &subnets);
        assert_eq!(best.node_id, Some(big.node_id));
        assert_eq!(best.score, 2.0);
        // Zero weights: everyone scores 1; the lowest id wins.
        let tie = find_best_node_for(&index, NOW, &BestNodeQuery::default(), &subnets);
        assert_eq!(tie.node_id, expected.first().copied());
        // Nothing matches ⇒ no node, score 0.
        let none = BestNodeQuery::from_json(r#"{"filter":{"require_gpu":true}}"#).unwrap();
        let result = find_best_node_for(&index, NOW, &none, &subnets);
        assert_eq!(result, BestNode::default());
        assert_eq!(result.to_json(), r#"{"node_id":null,"score":0.0}"#);
        // Expired entries are not served.
        assert!(
            find_nodes(
                &index,
                NOW + 301_000_000_000,
                &NodeQuery::default(),
                &subnets
            )
            .nodes
            .is_empty()
        );
    }

    #[test]
    fn json_queries_and_results() {
        let q = NodeQuery::from_json(
            r#"{"filter":{"require_tags":["gpu"],"min_memory_mb":1.0},"scope":{"tenants":["acme"]}}"#,
        )
        .unwrap();
        assert_eq!(q.scope, QueryScope::Tenants(vec!["acme".into()]));
        assert_eq!(NodeQuery::from_json("{}").unwrap(), NodeQuery::default());
        let err = NodeQuery::from_json(r#"{"filtr":{}}"#).unwrap_err();
        assert!(err.to_string().contains("filtr"), "{err}");
        let err = BestNodeQuery::from_json(r#"{"weights":{"mem":1}}"#).unwrap_err();
        assert!(err.to_string().contains("mem"), "{err}");
        let found = FoundNodes {
            nodes: vec![1, u64::MAX],
        };
        assert_eq!(found.to_json(), r#"{"nodes":[1,18446744073709551615]}"#);
        let best = BestNode {
            node_id: Some(u64::MAX),
            score: 1.5,
        };
        assert_eq!(
            best.to_json(),
            r#"{"node_id":18446744073709551615,"score":1.5}"#
        );
    }

    #[test]
    fn capabilities_json_lists_live_entries() {
        let a = node(1, caps(512, Some(1), &[]));
        let mut index = CapabilityIndex::new(a.node_id, IndexLimits::default());
        index.insert(a.clone(), NOW).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&capabilities_json(&index, NOW)).unwrap();
        let entry = &json["nodes"][0];
        assert_eq!(entry["node_id"].as_u64(), Some(a.node_id));
        assert_eq!(entry["expires_at_ns"].as_u64(), Some(NOW + 300_000_000_000));
        assert_eq!(entry["reflex_addr"], serde_json::Value::Null);
        assert_eq!(entry["capabilities"]["hardware"]["memory_mb"], 512);
        assert_eq!(
            entry["capabilities"]["hardware"]["gpu"]["vendor"],
            "Unknown"
        );
        let later = capabilities_json(&index, NOW + 300_000_000_000);
        assert_eq!(later, r#"{"nodes":[]}"#);
    }
}
