//! The JSON forms of the safety envelope's configuration and requests: what
//! the C ABI and the SDKs hand in (new: v0.11 has no serialized form).
//!
//! Both are decoders of untrusted bytes (fuzz target `safety_json`): the
//! input is bounded, unknown keys are errors naming the key (serde's
//! `deny_unknown_fields`), and every pattern is compiled with the bounded
//! regex compiler, an invalid one being an error naming the policy.
//!
//! ```json
//! {"mode": "enforce",
//!  "limits": {"max_concurrent": 10, "per_source_rpm": 100},
//!  "policies": [
//!    {"name": "no-secrets", "rule": {"block": "(?i)password"}, "action": "block"},
//!    {"name": "small", "rule": {"max_size": 4096}, "action": "warn"},
//!    {"name": "emails", "rule": {"redact": "[a-z]+@[a-z.]+"}}],
//!  "audit": {"log_success": true}}
//! ```
//!
//! A request: `{"source": "tenant-a", "content": "…", "tokens": 100,
//! "memory_mb": 64, "cost_cents": 2}` (all but `source` optional).

use serde::Deserialize;

use super::{
    AuditConfig, ContentPolicy, PolicyAction, SafetyConfig, SafetyError, SafetyLimits, SafetyMode,
    SafetyRequest,
};

/// Largest configuration or request accepted, in bytes.
pub const MAX_SAFETY_JSON_BYTES: usize = 1 << 20;
/// Most content policies in one configuration.
pub const MAX_POLICIES: usize = 1_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigJson {
    #[serde(default)]
    limits: SafetyLimits,
    #[serde(default)]
    mode: SafetyMode,
    #[serde(default)]
    policies: Vec<PolicyJson>,
    #[serde(default)]
    audit: AuditConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyJson {
    name: String,
    rule: RuleJson,
    #[serde(default = "default_action")]
    action: ActionJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum RuleJson {
    MaxSize(usize),
    Block(String),
    Require(String),
    Redact(String),
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum ActionJson {
    Block,
    Warn,
    Log,
}

fn default_action() -> ActionJson {
    ActionJson::Block
}

impl From<ActionJson> for PolicyAction {
    fn from(a: ActionJson) -> Self {
        match a {
            ActionJson::Block => Self::Block,
            ActionJson::Warn => Self::Warn,
            ActionJson::Log => Self::Log,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestJson {
    source: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tokens: u64,
    #[serde(default)]
    memory_mb: u64,
    #[serde(default)]
    cost_cents: u64,
}

fn bounded<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T, SafetyError> {
    if bytes.len() > MAX_SAFETY_JSON_BYTES {
        return Err(SafetyError::InvalidConfig(format!(
            "{what} JSON is {} bytes, more than {MAX_SAFETY_JSON_BYTES}",
            bytes.len()
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| SafetyError::InvalidConfig(format!("{what}: {e}")))
}

impl SafetyConfig {
    /// Decodes a configuration from untrusted JSON (every key optional;
    /// missing ones take the COMPUTE.md §7 defaults).
    ///
    /// # Errors
    /// [`SafetyError::InvalidConfig`] for oversized or malformed JSON, an
    /// unknown key or a wrong type (the message names it) or too many
    /// policies; [`SafetyError::InvalidPattern`] for a pattern that does not
    /// compile.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SafetyError> {
        let config: ConfigJson = bounded(bytes, "safety config")?;
        if config.policies.len() > MAX_POLICIES {
            return Err(SafetyError::InvalidConfig(format!(
                "policies: {} entries, more than {MAX_POLICIES}",
                config.policies.len()
            )));
        }
        let policies = config
            .policies
            .into_iter()
            .map(|p| {
                let action = p.action.into();
                match p.rule {
                    RuleJson::MaxSize(max) => Ok(ContentPolicy::max_size(p.name, max, action)),
                    RuleJson::Block(re) => ContentPolicy::block(p.name, &re, action),
                    RuleJson::Require(re) => ContentPolicy::require(p.name, &re, action),
                    RuleJson::Redact(re) => ContentPolicy::redact(p.name, &re),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            limits: config.limits,
            mode: config.mode,
            policies,
            audit: config.audit,
        })
    }
}

impl SafetyLimits {
    /// Decodes limits from untrusted JSON (missing keys take the defaults).
    ///
    /// # Errors
    /// [`SafetyError::InvalidConfig`] naming the bad key.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SafetyError> {
        bounded(bytes, "safety limits")
    }
}

impl SafetyRequest {
    /// Decodes a request from untrusted JSON (`source` required).
    ///
    /// # Errors
    /// [`SafetyError::InvalidConfig`] naming the bad key.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SafetyError> {
        let r: RequestJson = bounded(bytes, "safety request")?;
        Ok(Self {
            source: r.source,
            content: r.content,
            tokens: r.tokens,
            memory_mb: r.memory_mb,
            cost_cents: r.cost_cents,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_config_decodes_and_applies() {
        let json = br#"{"mode": "audit_only",
            "limits": {"max_concurrent": 3, "per_source_rpm": 7},
            "policies": [
              {"name": "no-secrets", "rule": {"block": "(?i)password"}},
              {"name": "small", "rule": {"max_size": 10}, "action": "warn"},
              {"name": "mail", "rule": {"redact": "[a-z]+@[a-z]+"}}],
            "audit": {"log_success": true}}"#;
        let c = SafetyConfig::from_json(json).unwrap();
        assert_eq!(c.mode, SafetyMode::AuditOnly);
        assert_eq!(c.limits.max_concurrent, 3);
        assert_eq!(c.limits.per_source_rpm, 7);
        assert_eq!(c.limits.global_rpm, SafetyLimits::default().global_rpm);
        assert_eq!(c.policies.len(), 3);
        assert_eq!(c.policies[1].action, PolicyAction::Warn);
        assert!(c.audit.log_success);
        assert_eq!(SafetyConfig::from_json(b"{}").unwrap().policies.len(), 0);
    }

    #[test]
    fn bad_keys_and_patterns_are_named() {
        let e = SafetyConfig::from_json(br#"{"limits": {"max_concurent": 1}}"#).unwrap_err();
        assert!(e.to_string().contains("max_concurent"), "{e}");
        let e = SafetyConfig::from_json(br#"{"modes": "enforce"}"#).unwrap_err();
        assert!(e.to_string().contains("modes"), "{e}");
        let e =
            SafetyConfig::from_json(br#"{"policies": [{"name": "x", "rule": {"block": "("}}]}"#)
                .unwrap_err();
        assert!(matches!(e, SafetyError::InvalidPattern { .. }), "{e}");
        let e = SafetyRequest::from_json(br#"{"tokens": 1}"#).unwrap_err();
        assert!(e.to_string().contains("source"), "{e}");
        let big = vec![b' '; MAX_SAFETY_JSON_BYTES + 1];
        assert!(matches!(
            SafetyLimits::from_json(&big),
            Err(SafetyError::InvalidConfig(_))
        ));
    }

    #[test]
    fn a_request_decodes() {
        let r =
            SafetyRequest::from_json(br#"{"source": "a", "content": "hi", "tokens": 5}"#).unwrap();
        assert_eq!(r, SafetyRequest::new("a").content("hi").tokens(5));
    }
}
