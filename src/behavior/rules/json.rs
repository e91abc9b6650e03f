//! The JSON form of a rule set (new: v0.11 has no rule file format, §8
//! item 12).
//!
//! `RuleSet::to_json` and `RuleSet::from_json` round-trip exactly (every
//! field, numbers included: serde_json's `float_roundtrip` is on). Loading
//! is a decoder of untrusted bytes (fuzz target `rules_json`): input size,
//! rule count and nesting are bounded, every rule is validated, and a
//! duplicate id is a typed error naming it (v0.11 silently stops loading
//! at the first duplicate).
//!
//! ```json
//! {"name": "edge", "rules": [{
//!   "id": "big-payload", "priority": "high",
//!   "condition": {"and": [
//!     {"single": {"field": "req.size", "op": "Gt", "value": 1048576}},
//!     {"not": {"single": {"field": "req.user.tier", "op": "Eq", "value": "pro"}}}]},
//!   "action": {"reject": {"reason": "too large"}},
//!   "rate_limit": {"max_executions": 10, "window_ms": 60000},
//!   "stop_on_match": true}]}
//! ```

use serde::{Deserialize, Serialize};

use super::RuleError;
use super::rule::Rule;

/// Largest JSON input accepted, in bytes.
pub const MAX_RULESET_BYTES: usize = 8 << 20;
/// Most rules in one set.
pub const MAX_RULES: usize = 10_000;

/// A named list of rules: the unit of loading and saving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// Set name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Caller-defined version.
    #[serde(default)]
    pub version: u64,
    /// The rules (their order only breaks priority ties).
    pub rules: Vec<Rule>,
}

impl RuleSet {
    /// A set with these rules.
    pub fn new(name: impl Into<String>, rules: Vec<Rule>) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            version: 0,
            rules,
        }
    }

    /// Checks every rule and that ids are unique.
    ///
    /// # Errors
    /// [`RuleError::TooManyRules`], [`RuleError::InvalidRule`], or
    /// [`RuleError::DuplicateId`] naming the first repeated id.
    pub fn validate(&self) -> Result<(), RuleError> {
        if self.rules.len() > MAX_RULES {
            return Err(RuleError::TooManyRules {
                count: self.rules.len(),
                max: MAX_RULES,
            });
        }
        let mut seen = std::collections::HashSet::new();
        for rule in &self.rules {
            rule.validate()?;
            if !seen.insert(rule.id.as_str()) {
                return Err(RuleError::DuplicateId(rule.id.clone()));
            }
        }
        Ok(())
    }

    /// Decodes and validates a rule set from untrusted bytes.
    ///
    /// # Errors
    /// [`RuleError::TooLarge`] above [`MAX_RULESET_BYTES`];
    /// [`RuleError::Json`] for malformed JSON, unknown keys, wrong types or
    /// nesting beyond serde_json's limit of 128; the condition errors of
    /// [`super::Condition::new`]; and those of [`RuleSet::validate`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, RuleError> {
        if bytes.len() > MAX_RULESET_BYTES {
            return Err(RuleError::TooLarge {
                len: bytes.len(),
                max: MAX_RULESET_BYTES,
            });
        }
        let set: RuleSet = serde_json::from_slice(bytes).map_err(RuleError::from_json)?;
        set.validate()?;
        Ok(set)
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        // Every key is a string and every value serializable: cannot fail.
        serde_json::to_string(self).expect("a RuleSet always serializes")
    }
}
