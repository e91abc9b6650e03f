//! Content policies of the safety envelope (COMPUTE.md §4.6).
//!
//! Departs from v0.11 (§8 item 11): Block / Require patterns are real
//! regular expressions (compiled once, size-bounded, an invalid pattern is
//! an error when the policy is built), and the envelope applies the
//! policies on `acquire` as well as `check`. `Redact` returns the content
//! with every match replaced, instead of only logging.

use regex::Regex;

use super::SafetyError;

/// What replaces each match of a `Redact` policy.
pub const REDACTED: &str = "[REDACTED]";

/// What a policy looks for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PolicyRule {
    /// Content longer than this many bytes violates the policy.
    MaxSize(usize),
    /// Content matching the pattern violates the policy.
    Block(Regex),
    /// Content not matching the pattern violates the policy.
    Require(Regex),
    /// Matches of the pattern are redacted (never a violation).
    Redact(Regex),
}

/// What a violation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PolicyAction {
    /// Refuse the request (in Enforce mode; a warning in AuditOnly).
    Block,
    /// Admit with a warning (audited).
    Warn,
    /// Admit and audit.
    Log,
}

/// A named content policy.
#[derive(Debug, Clone)]
pub struct ContentPolicy {
    /// Name, reported in violations and the audit log.
    pub name: String,
    /// What it looks for.
    pub rule: PolicyRule,
    /// What a violation does (ignored by `Redact`).
    pub action: PolicyAction,
}

fn compile(pattern: &str) -> Result<Regex, SafetyError> {
    crate::behavior::pattern::compile(pattern).map_err(|reason| SafetyError::InvalidPattern {
        pattern: crate::behavior::pattern::excerpt(pattern),
        reason,
    })
}

impl ContentPolicy {
    /// Content over `max_bytes` violates.
    pub fn max_size(name: impl Into<String>, max_bytes: usize, action: PolicyAction) -> Self {
        Self {
            name: name.into(),
            rule: PolicyRule::MaxSize(max_bytes),
            action,
        }
    }

    /// Content matching `pattern` violates.
    ///
    /// # Errors
    /// [`SafetyError::InvalidPattern`] if the pattern does not compile or
    /// is too large (see [`crate::behavior::pattern`]).
    pub fn block(
        name: impl Into<String>,
        pattern: &str,
        action: PolicyAction,
    ) -> Result<Self, SafetyError> {
        Self::with_pattern(name, pattern, action, PolicyRule::Block)
    }

    /// Content not matching `pattern` violates.
    ///
    /// # Errors
    /// As [`ContentPolicy::block`].
    pub fn require(
        name: impl Into<String>,
        pattern: &str,
        action: PolicyAction,
    ) -> Result<Self, SafetyError> {
        Self::with_pattern(name, pattern, action, PolicyRule::Require)
    }

    fn with_pattern(
        name: impl Into<String>,
        pattern: &str,
        action: PolicyAction,
        rule: fn(Regex) -> PolicyRule,
    ) -> Result<Self, SafetyError> {
        Ok(Self {
            name: name.into(),
            rule: rule(compile(pattern)?),
            action,
        })
    }

    /// Matches of `pattern` are replaced by [`REDACTED`].
    ///
    /// # Errors
    /// As [`ContentPolicy::block`].
    pub fn redact(name: impl Into<String>, pattern: &str) -> Result<Self, SafetyError> {
        Self::with_pattern(name, pattern, PolicyAction::Log, PolicyRule::Redact)
    }
}

/// The outcome of the policies on one piece of content.
#[derive(Debug, Default)]
pub(crate) struct ContentVerdict {
    /// Violations with their action.
    pub violations: Vec<(SafetyError, PolicyAction)>,
    /// The content with redactions applied, if any policy redacted.
    pub redacted: Option<String>,
}

pub(crate) fn apply(policies: &[ContentPolicy], content: &str) -> ContentVerdict {
    let mut verdict = ContentVerdict::default();
    for p in policies {
        let violation = match &p.rule {
            PolicyRule::MaxSize(max) if content.len() > *max => {
                Some(SafetyError::ContentTooLarge {
                    policy: p.name.clone(),
                    size: content.len(),
                    max: *max,
                })
            }
            PolicyRule::Block(re) if re.is_match(content) => Some(SafetyError::BlockedContent {
                policy: p.name.clone(),
            }),
            PolicyRule::Require(re) if !re.is_match(content) => {
                Some(SafetyError::MissingRequiredContent {
                    policy: p.name.clone(),
                })
            }
            PolicyRule::Redact(re) => {
                let current = verdict.redacted.as_deref().unwrap_or(content);
                if re.is_match(current) {
                    verdict.redacted = Some(re.replace_all(current, REDACTED).into_owned());
                }
                None
            }
            _ => None,
        };
        if let Some(v) = violation {
            verdict.violations.push((v, p.action));
        }
    }
    verdict
}
