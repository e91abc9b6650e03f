//! Capability diffs with version chains (COMPUTE.md §4.2): a node announces
//! what changed in its [`CapabilitySet`] since a version its peers hold,
//! instead of the whole set.
//!
//! A [`CapabilityDiff`] is `{node_id, base_version, new_version, ops,
//! timestamp_ns}`; it applies to a set at `base_version` and yields the set
//! at `new_version` (> base). A chain of diffs is valid when every diff is
//! of the same node, strictly forward, contiguous (each base is the
//! previous new version) and its timestamps never decrease.
//!
//! Decoding is a decoder of untrusted bytes (fuzz target `capability_diff`):
//! at most [`MAX_DIFF_BYTES`] of JSON and [`MAX_DIFF_OPS`] operations, both
//! ways (encoding refuses what decoding would). Applying is all or nothing:
//! the set is changed only when every operation applied.

use serde::{Deserialize, Serialize};

use crate::mesh::capability::caps::{
    CapabilitySet, Hardware, Limits, ModelInfo, Software, ToolInfo,
};

/// Largest encoded diff, in bytes.
pub const MAX_DIFF_BYTES: usize = 64 * 1024;
/// Most operations in one diff.
pub const MAX_DIFF_OPS: usize = 1_024;

/// One change to a capability set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum DiffOp {
    /// Adds a tag (no-op if present).
    AddTag(String),
    /// Removes a tag.
    RemoveTag(String),
    /// Adds a model (replacing one with the same id).
    AddModel(ModelInfo),
    /// Removes a model by id.
    RemoveModel(String),
    /// Changes a model's throughput or loaded state.
    UpdateModel {
        /// The model.
        model_id: String,
        /// New tokens per second, if it changed.
        #[serde(default)]
        tokens_per_sec: Option<u32>,
        /// New loaded state, if it changed.
        #[serde(default)]
        loaded: Option<bool>,
    },
    /// Adds a tool (replacing one with the same id).
    AddTool(ToolInfo),
    /// Removes a tool by id.
    RemoveTool(String),
    /// Replaces the hardware description.
    UpdateHardware(Hardware),
    /// Sets the memory, MB.
    UpdateMemory(u32),
    /// Sets the network bandwidth, Mbps.
    UpdateNetwork(u32),
    /// Replaces the software description.
    UpdateSoftware(Software),
    /// Adds (or re-versions) a runtime.
    AddRuntime {
        /// Name.
        name: String,
        /// Version.
        version: String,
    },
    /// Removes a runtime by name.
    RemoveRuntime(String),
    /// Adds (or re-versions) a framework.
    AddFramework {
        /// Name.
        name: String,
        /// Version.
        version: String,
    },
    /// Removes a framework by name.
    RemoveFramework(String),
    /// Replaces the limits.
    UpdateLimits(Limits),
    /// Sets `limits.max_concurrent_requests`.
    UpdateMaxConcurrent(u32),
    /// Sets `limits.rate_limit_rpm`.
    UpdateRateLimit(u32),
}

/// What changed in a node's capability set between two versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityDiff {
    /// The node whose set changed.
    pub node_id: u64,
    /// The version the diff applies to.
    pub base_version: u64,
    /// The version it produces (> base).
    pub new_version: u64,
    /// The changes, applied in order.
    pub ops: Vec<DiffOp>,
    /// When the change was made, ns since the Unix epoch.
    pub timestamp_ns: u64,
}

/// Why a diff was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiffError {
    /// More than [`MAX_DIFF_BYTES`] encoded.
    #[error("diff is {0} bytes, more than {MAX_DIFF_BYTES}")]
    TooLarge(usize),
    /// More than [`MAX_DIFF_OPS`] operations.
    #[error("diff has {0} operations, more than {MAX_DIFF_OPS}")]
    TooManyOps(usize),
    /// Malformed JSON, an unknown key or a wrong type.
    #[error("diff JSON: {0}")]
    Json(String),
    /// `new_version` is not above `base_version`.
    #[error("diff goes from version {base} to {new}, not forward")]
    NotForward {
        /// Base.
        base: u64,
        /// New.
        new: u64,
    },
    /// The set is not at the diff's base version.
    #[error("diff applies to version {base}, the set is at {current}")]
    BaseMismatch {
        /// The diff's base.
        base: u64,
        /// The set's version.
        current: u64,
    },
    /// Strict mode: a removal or update names something absent.
    #[error("{what} {name:?} is not present")]
    Absent {
        /// What kind of item.
        what: &'static str,
        /// Its name or id.
        name: String,
    },
    /// A chain's diffs are of different nodes.
    #[error("chain mixes node {first} and node {other}")]
    MixedNodes {
        /// The first diff's node.
        first: u64,
        /// The offending one.
        other: u64,
    },
    /// A chain skips or repeats versions.
    #[error("chain breaks at version {expected}: next diff starts at {found}")]
    Gap {
        /// The previous diff's new version.
        expected: u64,
        /// The next diff's base.
        found: u64,
    },
    /// A chain's timestamps go back.
    #[error("chain goes back in time at version {at_version}")]
    TimeReversed {
        /// The diff's base version.
        at_version: u64,
    },
}

impl CapabilityDiff {
    fn check_shape(&self) -> Result<(), DiffError> {
        if self.ops.len() > MAX_DIFF_OPS {
            return Err(DiffError::TooManyOps(self.ops.len()));
        }
        if self.new_version <= self.base_version {
            return Err(DiffError::NotForward {
                base: self.base_version,
                new: self.new_version,
            });
        }
        Ok(())
    }

    /// Decodes a diff from untrusted bytes.
    ///
    /// # Errors
    /// [`DiffError::TooLarge`], [`DiffError::Json`],
    /// [`DiffError::TooManyOps`], [`DiffError::NotForward`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, DiffError> {
        if bytes.len() > MAX_DIFF_BYTES {
            return Err(DiffError::TooLarge(bytes.len()));
        }
        let diff: Self =
            serde_json::from_slice(bytes).map_err(|e| DiffError::Json(e.to_string()))?;
        diff.check_shape()?;
        Ok(diff)
    }

    /// The JSON form.
    ///
    /// # Errors
    /// What [`CapabilityDiff::from_json`] would refuse of it.
    pub fn to_json(&self) -> Result<Vec<u8>, DiffError> {
        self.check_shape()?;
        let bytes = serde_json::to_vec(self).map_err(|e| DiffError::Json(e.to_string()))?;
        if bytes.len() > MAX_DIFF_BYTES {
            return Err(DiffError::TooLarge(bytes.len()));
        }
        Ok(bytes)
    }

    /// Applies the diff to `set`, which is at `current_version`; returns the
    /// new version. All or nothing: on error `set` is unchanged. With
    /// `strict`, removing or updating an absent item is an error; otherwise
    /// it is skipped.
    ///
    /// # Errors
    /// [`DiffError::BaseMismatch`], [`DiffError::NotForward`],
    /// [`DiffError::TooManyOps`], [`DiffError::Absent`] (strict).
    pub fn apply(
        &self,
        set: &mut CapabilitySet,
        current_version: u64,
        strict: bool,
    ) -> Result<u64, DiffError> {
        self.check_shape()?;
        if current_version != self.base_version {
            return Err(DiffError::BaseMismatch {
                base: self.base_version,
                current: current_version,
            });
        }
        let mut next = set.clone();
        for op in &self.ops {
            apply_op(&mut next, op, strict)?;
        }
        *set = next;
        Ok(self.new_version)
    }
}

fn absent(what: &'static str, name: &str) -> DiffError {
    DiffError::Absent {
        what,
        name: name.chars().take(128).collect(),
    }
}

/// Removes the entries `key` selects as equal to `name`; strict: at least one.
fn remove_where<T>(
    list: &mut Vec<T>,
    key: impl Fn(&T) -> &str,
    name: &str,
    what: &'static str,
    strict: bool,
) -> Result<(), DiffError> {
    let before = list.len();
    list.retain(|item| key(item) != name);
    if strict && list.len() == before {
        return Err(absent(what, name));
    }
    Ok(())
}

fn upsert_pair(list: &mut Vec<(String, String)>, name: &str, version: &str) {
    match list.iter_mut().find(|(n, _)| n == name) {
        Some(entry) => entry.1 = version.to_owned(),
        None => list.push((name.to_owned(), version.to_owned())),
    }
}

fn apply_op(set: &mut CapabilitySet, op: &DiffOp, strict: bool) -> Result<(), DiffError> {
    match op {
        DiffOp::AddTag(tag) => {
            if !set.tags.contains(tag) {
                set.tags.push(tag.clone());
            }
        }
        DiffOp::RemoveTag(tag) => remove_where(&mut set.tags, |t| t, tag, "tag", strict)?,
        DiffOp::AddModel(model) => {
            set.models.retain(|m| m.model_id != model.model_id);
            set.models.push(model.clone());
        }
        DiffOp::RemoveModel(id) => {
            remove_where(&mut set.models, |m| &m.model_id, id, "model", strict)?;
        }
        DiffOp::UpdateModel {
            model_id,
            tokens_per_sec,
            loaded,
        } => match set.models.iter_mut().find(|m| &m.model_id == model_id) {
            Some(m) => {
                if let Some(t) = tokens_per_sec {
                    m.tokens_per_sec = *t;
                }
                if let Some(l) = loaded {
                    m.loaded = *l;
                }
            }
            None if strict => return Err(absent("model", model_id)),
            None => {}
        },
        DiffOp::AddTool(tool) => {
            set.tools.retain(|t| t.tool_id != tool.tool_id);
            set.tools.push(tool.clone());
        }
        DiffOp::RemoveTool(id) => remove_where(&mut set.tools, |t| &t.tool_id, id, "tool", strict)?,
        DiffOp::UpdateHardware(hw) => set.hardware = hw.clone(),
        DiffOp::UpdateMemory(mb) => set.hardware.memory_mb = *mb,
        DiffOp::UpdateNetwork(mbps) => set.hardware.network_mbps = *mbps,
        DiffOp::UpdateSoftware(sw) => set.software = sw.clone(),
        DiffOp::AddRuntime { name, version } => {
            upsert_pair(&mut set.software.runtimes, name, version);
        }
        DiffOp::RemoveRuntime(name) => {
            remove_where(
                &mut set.software.runtimes,
                |(n, _)| n,
                name,
                "runtime",
                strict,
            )?;
        }
        DiffOp::AddFramework { name, version } => {
            upsert_pair(&mut set.software.frameworks, name, version);
        }
        DiffOp::RemoveFramework(name) => {
            remove_where(
                &mut set.software.frameworks,
                |(n, _)| n,
                name,
                "framework",
                strict,
            )?;
        }
        DiffOp::UpdateLimits(limits) => set.limits = limits.clone(),
        DiffOp::UpdateMaxConcurrent(n) => set.limits.max_concurrent_requests = *n,
        DiffOp::UpdateRateLimit(rpm) => set.limits.rate_limit_rpm = *rpm,
    }
    Ok(())
}

/// Checks that `diffs` form a chain: one node, each strictly forward, each
/// starting where the previous ended, timestamps never decreasing.
///
/// # Errors
/// [`DiffError::MixedNodes`], [`DiffError::NotForward`], [`DiffError::Gap`],
/// [`DiffError::TimeReversed`].
pub fn validate_chain(diffs: &[CapabilityDiff]) -> Result<(), DiffError> {
    let Some(first) = diffs.first() else {
        return Ok(());
    };
    let mut previous: Option<&CapabilityDiff> = None;
    for diff in diffs {
        if diff.node_id != first.node_id {
            return Err(DiffError::MixedNodes {
                first: first.node_id,
                other: diff.node_id,
            });
        }
        diff.check_shape()?;
        if let Some(p) = previous {
            if diff.base_version != p.new_version {
                return Err(DiffError::Gap {
                    expected: p.new_version,
                    found: diff.base_version,
                });
            }
            if diff.timestamp_ns < p.timestamp_ns {
                return Err(DiffError::TimeReversed {
                    at_version: diff.base_version,
                });
            }
        }
        previous = Some(diff);
    }
    Ok(())
}

/// Applies a chain to `set` at `current_version`, all or nothing; returns
/// the final version.
///
/// # Errors
/// Those of [`validate_chain`] and [`CapabilityDiff::apply`].
pub fn apply_chain(
    diffs: &[CapabilityDiff],
    set: &mut CapabilitySet,
    current_version: u64,
    strict: bool,
) -> Result<u64, DiffError> {
    validate_chain(diffs)?;
    let mut next = set.clone();
    let mut version = current_version;
    for diff in diffs {
        version = diff.apply(&mut next, version, strict)?;
    }
    *set = next;
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(base: u64, new: u64, ts: u64, ops: Vec<DiffOp>) -> CapabilityDiff {
        CapabilityDiff {
            node_id: 9,
            base_version: base,
            new_version: new,
            ops,
            timestamp_ns: ts,
        }
    }

    fn model(id: &str) -> ModelInfo {
        ModelInfo {
            model_id: id.into(),
            ..ModelInfo::default()
        }
    }

    #[test]
    fn a_diff_applies_all_or_nothing_and_round_trips() {
        let mut set = CapabilitySet::default();
        let d = diff(
            0,
            1,
            10,
            vec![
                DiffOp::AddTag("gpu".into()),
                DiffOp::AddModel(model("llama")),
                DiffOp::UpdateModel {
                    model_id: "llama".into(),
                    tokens_per_sec: Some(50),
                    loaded: Some(true),
                },
                DiffOp::AddRuntime {
                    name: "python".into(),
                    version: "3.12".into(),
                },
                DiffOp::UpdateMemory(4096),
                DiffOp::UpdateMaxConcurrent(8),
            ],
        );
        let bytes = d.to_json().unwrap();
        assert_eq!(CapabilityDiff::from_json(&bytes).unwrap(), d);
        assert_eq!(d.apply(&mut set, 0, true), Ok(1));
        assert_eq!(set.tags, vec!["gpu".to_owned()]);
        assert_eq!(
            (set.models[0].tokens_per_sec, set.models[0].loaded),
            (50, true)
        );
        assert_eq!(set.hardware.memory_mb, 4096);
        assert_eq!(set.limits.max_concurrent_requests, 8);
        // Strict: a removal of something absent fails and changes nothing.
        let before = set.clone();
        let bad = diff(
            1,
            2,
            11,
            vec![
                DiffOp::RemoveTag("gpu".into()),
                DiffOp::RemoveTool("x".into()),
            ],
        );
        assert!(matches!(
            bad.apply(&mut set, 1, true),
            Err(DiffError::Absent { what: "tool", .. })
        ));
        assert_eq!(set, before);
        // Lenient: skipped.
        assert_eq!(bad.apply(&mut set, 1, false), Ok(2));
        assert!(set.tags.is_empty());
        assert!(matches!(
            d.apply(&mut set, 5, false),
            Err(DiffError::BaseMismatch { .. })
        ));
    }

    #[test]
    fn chains_must_be_contiguous_forward_and_in_time() {
        let ok = vec![
            diff(0, 1, 5, vec![]),
            diff(1, 3, 5, vec![]),
            diff(3, 4, 9, vec![]),
        ];
        assert_eq!(validate_chain(&ok), Ok(()));
        let mut set = CapabilitySet::default();
        assert_eq!(apply_chain(&ok, &mut set, 0, true), Ok(4));
        let gap = vec![diff(0, 1, 5, vec![]), diff(2, 3, 6, vec![])];
        assert_eq!(
            validate_chain(&gap),
            Err(DiffError::Gap {
                expected: 1,
                found: 2
            })
        );
        let back = vec![diff(0, 1, 5, vec![]), diff(1, 2, 4, vec![])];
        assert_eq!(
            validate_chain(&back),
            Err(DiffError::TimeReversed { at_version: 1 })
        );
        let mut other = diff(1, 2, 6, vec![]);
        other.node_id = 10;
        assert!(matches!(
            validate_chain(&[diff(0, 1, 5, vec![]), other]),
            Err(DiffError::MixedNodes { .. })
        ));
        assert!(matches!(
            validate_chain(&[diff(3, 3, 5, vec![])]),
            Err(DiffError::NotForward { .. })
        ));
    }

    #[test]
    fn bounds_hold_both_ways() {
        let many = diff(0, 1, 0, vec![DiffOp::UpdateMemory(1); MAX_DIFF_OPS + 1]);
        assert_eq!(many.to_json(), Err(DiffError::TooManyOps(MAX_DIFF_OPS + 1)));
        let big = diff(0, 1, 0, vec![DiffOp::AddTag("x".repeat(MAX_DIFF_BYTES)); 1]);
        assert!(matches!(big.to_json(), Err(DiffError::TooLarge(_))));
        assert!(matches!(
            CapabilityDiff::from_json(&vec![b' '; MAX_DIFF_BYTES + 1]),
            Err(DiffError::TooLarge(_))
        ));
        let unknown = br#"{"node_id":1,"base_version":0,"new_version":1,"ops":[{"set_field":1}],"timestamp_ns":0}"#;
        assert!(matches!(
            CapabilityDiff::from_json(unknown),
            Err(DiffError::Json(_))
        ));
    }
}
