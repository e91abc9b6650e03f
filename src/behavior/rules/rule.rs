//! Rules, priorities and actions (COMPUTE.md §4.3).
//!
//! A [`Rule`] is plain data with a JSON form (serde): its expression and
//! its action serialize, unlike v0.11's (§8 item 12, "no persistent
//! format"). [`Rule::validate`] states every bound a rule must hold; the
//! engine and the JSON loader both call it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RuleError;
use super::expr::{Expr, MAX_EXPR_DEPTH};

/// Longest rule id, in bytes.
pub const MAX_ID_LEN: usize = 256;
/// Largest `max_executions` of a rate limit (the engine keeps one timestamp
/// per execution inside the window).
pub const MAX_RATE_EXECUTIONS: u32 = 100_000;
/// Deepest [`Action::Chain`] nesting.
pub const MAX_CHAIN_DEPTH: usize = 16;

/// Evaluation priority: higher first, ties in insertion order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Priority {
    /// 0.
    Lowest,
    /// 25.
    Low,
    /// 50 (the default).
    #[default]
    Normal,
    /// 75.
    High,
    /// 100.
    Highest,
    /// Any value.
    Custom(i32),
}

impl Priority {
    /// The numeric value rules are ordered by.
    pub fn value(self) -> i32 {
        match self {
            Self::Lowest => 0,
            Self::Low => 25,
            Self::Normal => 50,
            Self::High => 75,
            Self::Highest => 100,
            Self::Custom(n) => n,
        }
    }
}

/// At most `max_executions` released actions in any `window_ms`-long
/// interval (a sliding window: exact at every instant, no boundary burst).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Releases allowed per window (0: the action is never released).
    pub max_executions: u32,
    /// Window length in milliseconds (> 0).
    pub window_ms: u64,
}

/// Log levels of [`Action::Log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LogLevel {
    /// Trace.
    Trace,
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warn.
    Warn,
    /// Error.
    Error,
}

/// What a released rule asks the caller to do. The engine never executes
/// an action; it returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Action {
    /// Log a message.
    Log {
        /// Level.
        level: LogLevel,
        /// Message.
        message: String,
    },
    /// Emit an event on a channel.
    Emit {
        /// Channel name.
        channel: String,
        /// Payload.
        payload: Value,
    },
    /// Set a key of the caller's context.
    SetContext {
        /// Key (a dot path, interpreted by the caller).
        key: String,
        /// Value.
        value: Value,
    },
    /// Add to a named counter.
    IncrementCounter {
        /// Counter name.
        name: String,
        /// Amount (may be negative).
        by: i64,
    },
    /// Raise an alert.
    Alert {
        /// Severity label.
        severity: String,
        /// Message.
        message: String,
    },
    /// Throttle the subject.
    Throttle {
        /// Allowed requests per second.
        max_per_sec: u32,
        /// For how long, in milliseconds.
        duration_ms: u64,
    },
    /// Reject the request.
    Reject {
        /// Reason given to the requester.
        reason: String,
    },
    /// Send the request elsewhere.
    Redirect {
        /// Target (interpreted by the caller).
        target: String,
    },
    /// Scale a service.
    Scale {
        /// Service.
        target: String,
        /// Change in instances (may be negative).
        delta: i64,
    },
    /// Anything else, interpreted by the caller.
    Custom {
        /// Action name.
        name: String,
        /// Parameters.
        params: Value,
    },
    /// Several actions, in order.
    Chain(Vec<Action>),
    /// Nothing.
    Noop,
}

impl Action {
    /// Nesting depth of chains (a non-chain action is 0).
    pub fn chain_depth(&self) -> usize {
        match self {
            Self::Chain(actions) => 1 + actions.iter().map(Action::chain_depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// The leaf actions of a chain, depth first, in order (a non-chain
    /// action yields itself).
    pub fn flatten(&self) -> Vec<&Action> {
        let mut out = Vec::new();
        fn walk<'a>(a: &'a Action, out: &mut Vec<&'a Action>) {
            match a {
                Action::Chain(items) => items.iter().for_each(|i| walk(i, out)),
                other => out.push(other),
            }
        }
        walk(self, &mut out);
        out
    }
}

/// A rule: when `condition` holds, release `action` (subject to cooldown
/// and rate limit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique id within an engine or rule set.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Evaluation priority.
    #[serde(default)]
    pub priority: Priority,
    /// When the rule matches.
    pub condition: Expr,
    /// What a released match returns.
    pub action: Action,
    /// A disabled rule never matches.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Labels; [`super::RuleEngine::evaluate_tagged`] visits only rules
    /// carrying a given tag.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Minimum milliseconds between two released actions.
    #[serde(default)]
    pub cooldown_ms: Option<u64>,
    /// Sliding-window cap on released actions.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// A match ends the walk, even when its action is suppressed.
    #[serde(default)]
    pub stop_on_match: bool,
    /// Creation time, ms (caller-defined clock; informational).
    #[serde(default)]
    pub created_ms: u64,
    /// Last update time, ms (informational).
    #[serde(default)]
    pub updated_ms: u64,
}

fn yes() -> bool {
    true
}

impl Rule {
    /// An enabled rule with Normal priority and no limits.
    pub fn new(id: impl Into<String>, condition: Expr, action: Action) -> Self {
        let id = id.into();
        Self {
            name: id.clone(),
            id,
            description: String::new(),
            priority: Priority::Normal,
            condition,
            action,
            enabled: true,
            tags: Vec::new(),
            cooldown_ms: None,
            rate_limit: None,
            stop_on_match: false,
            created_ms: 0,
            updated_ms: 0,
        }
    }

    /// Sets the priority.
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the cooldown.
    pub fn with_cooldown_ms(mut self, ms: u64) -> Self {
        self.cooldown_ms = Some(ms);
        self
    }

    /// Sets the rate limit.
    pub fn with_rate_limit(mut self, max_executions: u32, window_ms: u64) -> Self {
        self.rate_limit = Some(RateLimit {
            max_executions,
            window_ms,
        });
        self
    }

    /// Makes a match end the walk.
    pub fn stop_on_match(mut self) -> Self {
        self.stop_on_match = true;
        self
    }

    /// Adds a tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Sets `enabled`.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Checks the bounds a rule must hold (conditions are checked when
    /// they are built).
    ///
    /// # Errors
    /// [`RuleError::InvalidRule`] naming the rule and the broken bound:
    /// empty or oversized id, expression deeper than
    /// [`MAX_EXPR_DEPTH`], chain deeper than [`MAX_CHAIN_DEPTH`], a rate
    /// limit with a zero window or more than [`MAX_RATE_EXECUTIONS`].
    pub fn validate(&self) -> Result<(), RuleError> {
        let invalid = |reason: String| RuleError::InvalidRule {
            id: self.id.chars().take(MAX_ID_LEN).collect(),
            reason,
        };
        if self.id.is_empty() {
            return Err(invalid("empty id".into()));
        }
        if self.id.len() > MAX_ID_LEN {
            return Err(invalid(format!("id longer than {MAX_ID_LEN} bytes")));
        }
        let depth = self.condition.depth();
        if depth > MAX_EXPR_DEPTH {
            return Err(invalid(format!(
                "condition depth {depth} > {MAX_EXPR_DEPTH}"
            )));
        }
        let chain = self.action.chain_depth();
        if chain > MAX_CHAIN_DEPTH {
            return Err(invalid(format!("chain depth {chain} > {MAX_CHAIN_DEPTH}")));
        }
        if let Some(rl) = self.rate_limit {
            if rl.window_ms == 0 {
                return Err(invalid("rate limit window_ms is 0".into()));
            }
            if rl.max_executions > MAX_RATE_EXECUTIONS {
                return Err(invalid(format!(
                    "rate limit max_executions > {MAX_RATE_EXECUTIONS}"
                )));
            }
        }
        Ok(())
    }
}
