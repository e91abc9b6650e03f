//! The rules engine (COMPUTE.md §4.3): conditions over a JSON context,
//! priorities, cooldowns, rate limits, actions returned to the caller, and
//! a JSON form for rule sets.
//!
//! - [`value`]: numeric-aware equality and order of JSON values.
//! - [`expr`]: [`Condition`], [`Op`], [`Expr`].
//! - [`rule`]: [`Rule`], [`Priority`], [`RateLimit`], [`Action`].
//! - [`engine`]: [`RuleEngine`] (evaluate through `&self`, stats).
//! - [`json`]: [`RuleSet`] and its bounded JSON loader.
//!
//! Departures from v0.11 (§8 item 12) are listed in each file; in short:
//! numbers compare as numbers, a missing field is not null, bad operands
//! and invalid regexes are load errors, `Matches` is a regex, limits are
//! exact sliding windows, the engine is shared, and rule sets persist.

mod compiled;
pub mod engine;
pub mod expr;
mod index;
pub mod json;
pub mod rule;
pub mod value;

pub use engine::{Evaluation, RuleEngine, RuleOutcome, RuleStats, Suppression};
pub use expr::{Condition, Expr, Op};
pub use json::RuleSet;
pub use rule::{Action, LogLevel, Priority, RateLimit, Rule};

/// Why a rule, condition or rule set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// Two rules share this id (in a set, or with a rule already in the
    /// engine). Rename one.
    #[error("duplicate rule id {0:?}")]
    DuplicateId(String),
    /// No rule has this id.
    #[error("no rule with id {0:?}")]
    UnknownRule(String),
    /// The field path is malformed (`reason` says how).
    #[error("invalid field path {path:?}: {reason}")]
    InvalidPath {
        /// The path (first 128 characters).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The operand's JSON type does not suit the operator.
    #[error("operator {op:?} needs {expected} as its value")]
    OperandType {
        /// The operator.
        op: Op,
        /// The JSON type it needs.
        expected: &'static str,
    },
    /// A `Matches` pattern does not compile or is too large.
    #[error("invalid regex {pattern:?}: {reason}")]
    InvalidRegex {
        /// The pattern (first 128 characters).
        pattern: String,
        /// The compiler's complaint or the bound exceeded.
        reason: String,
    },
    /// A rule breaks a bound of [`Rule::validate`].
    #[error("invalid rule {id:?}: {reason}")]
    InvalidRule {
        /// The rule's id.
        id: String,
        /// The broken bound.
        reason: String,
    },
    /// The JSON input is larger than the loader accepts.
    #[error("rule set JSON is {len} bytes, more than {max}")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The set holds more rules than the loader accepts.
    #[error("rule set has {count} rules, more than {max}")]
    TooManyRules {
        /// Rules in the set.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// Malformed JSON, an unknown key or a wrong type, with serde_json's
    /// line and column.
    #[error("rule set JSON: {0}")]
    Json(String),
}

impl RuleError {
    fn from_json(e: serde_json::Error) -> Self {
        // A condition's own error travels through serde as a message; the
        // typed variant is what Condition::new returns to Rust callers.
        Self::Json(e.to_string())
    }
}

#[cfg(test)]
mod tests;
