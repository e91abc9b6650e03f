//! `net_rules_*`, `net_safety_*`, `net_lb_*`: the behavior plane's rules
//! engine, safety envelope and load balancer (COMPUTE.md §4.3, §4.4, §4.6).
//!
//! Configuration, contexts and results are JSON (rule sets in the
//! `RuleSet` form, safety configuration in `SafetyConfig::from_json`'s
//! form, balancer settings in `LbConfig`'s). What a caller holds while it
//! works is a handle: a safety *permit* (`net_safety_permit_t`) keeps its
//! claims until freed, a balancer *selection* (`net_lb_selection_t`) keeps
//! its connection slot until completed or freed — so neither can leak
//! while the SDKs' finalizers and context managers hold them.
//!
//! Time: each handle keeps its own monotonic clock (milliseconds since it
//! was created) for cooldowns, rate windows and circuit breakers.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use serde::Deserialize;
use serde_json::{Value, json};

use super::bytes::net_bytes_t;
use super::error::FfiError;
use super::export::ffi_export;
use super::handle::{self, HandleInner, opaque_handle};
use super::status::net_status_t;
use crate::behavior::loadbalance::{
    Endpoint, EndpointMetrics, Health, LbConfig, LbError, LoadBalancer, RequestContext, Selection,
};
use crate::behavior::rules::{RuleEngine, RuleError, RuleOutcome, RuleSet, Suppression};
use crate::behavior::safety::{
    SafetyConfig, SafetyEnvelope, SafetyError, SafetyGuard, SafetyLimits, SafetyRequest,
};

/// Largest context JSON `net_rules_evaluate` and `net_lb_select` accept.
pub const NET_BEHAVIOR_MAX_CONTEXT_BYTES: usize = 16_777_216;

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn to_json_bytes(value: &Value) -> net_bytes_t {
    net_bytes_t::from_vec(value.to_string().into_bytes())
}

fn bounded_json(bytes: &[u8], name: &str, status: net_status_t) -> Result<Value, FfiError> {
    if bytes.len() > NET_BEHAVIOR_MAX_CONTEXT_BYTES {
        return Err(FfiError::new(
            status,
            format!(
                "{name} is {} bytes, more than {NET_BEHAVIOR_MAX_CONTEXT_BYTES}",
                bytes.len()
            ),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| FfiError::new(status, format!("{name}: {e}")))
}

impl From<RuleError> for FfiError {
    fn from(err: RuleError) -> Self {
        let status = match err {
            RuleError::UnknownRule(_) => net_status_t::NET_ERR_RULES_UNKNOWN_RULE,
            _ => net_status_t::NET_ERR_RULES_INVALID,
        };
        Self::new(status, err.to_string())
    }
}

impl From<SafetyError> for FfiError {
    fn from(err: SafetyError) -> Self {
        let status = match err {
            SafetyError::KillSwitch { .. } => net_status_t::NET_ERR_SAFETY_KILL_SWITCH,
            SafetyError::GlobalRateLimit { .. }
            | SafetyError::SourceRateLimit { .. }
            | SafetyError::TokenRateLimit { .. } => net_status_t::NET_ERR_SAFETY_RATE_LIMITED,
            SafetyError::ContentTooLarge { .. }
            | SafetyError::BlockedContent { .. }
            | SafetyError::MissingRequiredContent { .. } => net_status_t::NET_ERR_SAFETY_CONTENT,
            SafetyError::InvalidConfig(_) | SafetyError::InvalidPattern { .. } => {
                net_status_t::NET_ERR_SAFETY_CONFIG
            }
            _ => net_status_t::NET_ERR_SAFETY_LIMIT,
        };
        Self::new(status, err.to_string())
    }
}

impl From<LbError> for FfiError {
    fn from(err: LbError) -> Self {
        let status = match err {
            LbError::DuplicateEndpoint => net_status_t::NET_ERR_LB_DUPLICATE_ENDPOINT,
            LbError::UnknownEndpoint => net_status_t::NET_ERR_LB_UNKNOWN_ENDPOINT,
            _ => net_status_t::NET_ERR_LB_NO_ENDPOINT,
        };
        Self::new(status, err.to_string())
    }
}

// ---- rules ------------------------------------------------------------------

/// A rules engine: an ordered set of rules evaluated against JSON contexts.
/// Thread-safe (evaluations run concurrently); release with `net_rules_free`.
#[allow(non_camel_case_types)]
pub struct net_rules_t {
    _opaque: [u8; 0],
}

/// The engine behind `net_rules_t`, with the clock its cooldowns and rate
/// limits run on.
pub(crate) struct Rules {
    engine: RuleEngine,
    epoch: Instant,
}

impl HandleInner for Rules {}
opaque_handle!(net_rules_t => Rules, kind = b"NRUL");

/// Creates a rules engine holding the rules of a JSON rule set
/// (`{"name": …, "rules": [...]}`, docs/sdk-c.md has the form); an empty
/// `ruleset_json` (length 0) makes an empty engine.
///
/// Errors: `NET_ERR_RULES_INVALID` naming the bad key, operand, regex or
/// duplicate id.
///
/// # Safety
/// `ruleset_json` is readable for `ruleset_json_len` bytes; `out` is valid
/// for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_rules_new(
    ruleset_json: *const u8,
    ruleset_json_len: usize,
    out: *mut *mut net_rules_t,
) -> net_status_t {
    ffi_export!(bytes ruleset_json[ruleset_json_len]; out out; {
        let engine = if ruleset_json.is_empty() {
            RuleEngine::new()
        } else {
            RuleEngine::from_rule_set(RuleSet::from_json(ruleset_json)?)?
        };
        out.write(handle::into_raw(Rules { engine, epoch: Instant::now() }));
        Ok(())
    })
}

/// Adds the rules of a JSON rule set, all or none.
///
/// Errors: `NET_ERR_RULES_INVALID` (also for an id already present).
///
/// # Safety
/// `rules` is NULL or from libnet; `ruleset_json` is readable for its length.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_rules_load(
    rules: *const net_rules_t,
    ruleset_json: *const u8,
    ruleset_json_len: usize,
) -> net_status_t {
    ffi_export!(handle rules; bytes ruleset_json[ruleset_json_len]; {
        rules.engine.add_all(RuleSet::from_json(ruleset_json)?.rules)?;
        Ok(())
    })
}

/// Removes the rule with this id (its stats go with it).
///
/// Errors: `NET_ERR_RULES_UNKNOWN_RULE`.
///
/// # Safety
/// `rules` is NULL or from libnet; `id` is readable for `id_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_rules_remove(
    rules: *const net_rules_t,
    id: *const u8,
    id_len: usize,
) -> net_status_t {
    ffi_export!(handle rules; str id[id_len]; {
        rules
            .engine
            .remove(id)
            .ok_or_else(|| FfiError::from(RuleError::UnknownRule(id.to_owned())))?;
        Ok(())
    })
}

fn outcome_json(o: &RuleOutcome) -> Value {
    let suppressed = o.suppressed.map(|s| match s {
        Suppression::Cooldown => "cooldown",
        Suppression::RateLimited => "rate_limited",
    });
    json!({
        "rule_id": &*o.rule_id,
        "name": &*o.name,
        "action": o.action,
        "suppressed": suppressed,
        "stop_processing": o.stop_processing,
    })
}

/// Evaluates the rules against a JSON context (with `tag`, only the rules
/// carrying that tag; NULL: all). Writes
/// `{"visited": n, "outcomes": [{"rule_id", "name", "action" (null when
/// suppressed), "suppressed" (null, "cooldown" or "rate_limited"),
/// "stop_processing"}]}`, one outcome per matching rule in evaluation order.
/// Released actions count against their rule's cooldown and rate limit.
///
/// Errors: `NET_ERR_RULES_INVALID` for malformed context JSON or one over
/// 16 MiB.
///
/// # Safety
/// `rules` is NULL or from libnet; `context_json` is readable for its
/// length; `tag` is NULL (with length 0) or readable for `tag_len` bytes;
/// `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_rules_evaluate(
    rules: *const net_rules_t,
    context_json: *const u8,
    context_json_len: usize,
    tag: *const u8,
    tag_len: usize,
    out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle rules; bytes context_json[context_json_len]; opt_str tag[tag_len]; out out; {
        let ctx = bounded_json(context_json, "context", net_status_t::NET_ERR_RULES_INVALID)?;
        let now_ms = millis_since(rules.epoch);
        let evaluation = match tag {
            Some(tag) => rules.engine.evaluate_tagged(&ctx, tag, now_ms),
            None => rules.engine.evaluate(&ctx, now_ms),
        };
        let outcomes: Vec<Value> = evaluation.outcomes.iter().map(outcome_json).collect();
        out.write(to_json_bytes(&json!({
            "visited": evaluation.visited,
            "outcomes": outcomes,
        })));
        Ok(())
    })
}

/// A rule's counters as JSON: `{"evaluations", "matches", "executions",
/// "suppressed_cooldown", "suppressed_rate_limit", "last_match_ms"}`
/// (`last_match_ms` on the engine's clock, or null).
///
/// Errors: `NET_ERR_RULES_UNKNOWN_RULE`.
///
/// # Safety
/// `rules` is NULL or from libnet; `id` is readable for `id_len` bytes;
/// `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_rules_stats(
    rules: *const net_rules_t,
    id: *const u8,
    id_len: usize,
    out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle rules; str id[id_len]; out out; {
        let stats = rules
            .engine
            .stats(id)
            .ok_or_else(|| FfiError::from(RuleError::UnknownRule(id.to_owned())))?;
        out.write(to_json_bytes(&json!(stats)));
        Ok(())
    })
}

/// The engine's rules as a JSON rule set named `"rules"`, in evaluation
/// order (loads back with `net_rules_new`).
///
/// # Safety
/// `rules` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_rules_to_json(
    rules: *const net_rules_t,
    out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle rules; out out; {
        let set = rules.engine.to_rule_set("rules");
        out.write(net_bytes_t::from_vec(set.to_json().into_bytes()));
        Ok(())
    })
}

/// Frees a rules engine. NULL-safe and idempotent; waits up to 5 s for
/// calls in flight (then `NET_ERR_BUSY`, the engine leaked).
///
/// # Safety
/// `rules` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_rules_free(rules: *mut net_rules_t) -> net_status_t {
    super::export::run(|| handle::free(rules))
}

// ---- safety -----------------------------------------------------------------

/// A safety envelope: kill switch, caps, rate limits, content policies and
/// audit. Thread-safe; release with `net_safety_free` (permits already
/// issued stay valid and release into it).
#[allow(non_camel_case_types)]
pub struct net_safety_t {
    _opaque: [u8; 0],
}

/// An admitted request's claims (a concurrency slot, memory, reserved
/// tokens and cost), released by `net_safety_permit_free`.
#[allow(non_camel_case_types)]
pub struct net_safety_permit_t {
    _opaque: [u8; 0],
}

impl HandleInner for SafetyEnvelope {}
opaque_handle!(net_safety_t => SafetyEnvelope, kind = b"NSAF");

/// The guard behind `net_safety_permit_t` (`consume` needs it mutably).
pub(crate) struct Permit(Mutex<SafetyGuard>);

impl HandleInner for Permit {}
opaque_handle!(net_safety_permit_t => Permit, kind = b"NSPM");

/// Creates a safety envelope from JSON (`{"mode", "limits", "policies",
/// "audit"}`, every key optional; length 0: the defaults of COMPUTE.md §7).
///
/// Errors: `NET_ERR_SAFETY_CONFIG` naming the bad key or pattern.
///
/// # Safety
/// `config_json` is readable for its length; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_safety_new(
    config_json: *const u8,
    config_json_len: usize,
    out: *mut *mut net_safety_t,
) -> net_status_t {
    ffi_export!(bytes config_json[config_json_len]; out out; {
        let config = if config_json.is_empty() {
            SafetyConfig::default()
        } else {
            SafetyConfig::from_json(config_json)?
        };
        out.write(handle::into_raw(SafetyEnvelope::new(config)));
        Ok(())
    })
}

/// Admits a request (`{"source", "content", "tokens", "memory_mb",
/// "cost_cents"}`) and writes a permit holding its claims until
/// `net_safety_permit_free`. All limits are checked and recorded at once:
/// racing acquirers never exceed a cap.
///
/// Errors: `NET_ERR_SAFETY_KILL_SWITCH`, `NET_ERR_SAFETY_LIMIT`,
/// `NET_ERR_SAFETY_RATE_LIMITED`, `NET_ERR_SAFETY_CONTENT` (the message
/// says which limit or policy), `NET_ERR_SAFETY_CONFIG` for a bad request.
///
/// # Safety
/// `safety` is NULL or from libnet; `request_json` is readable for its
/// length; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_safety_acquire(
    safety: *const net_safety_t,
    request_json: *const u8,
    request_json_len: usize,
    out: *mut *mut net_safety_permit_t,
) -> net_status_t {
    ffi_export!(handle safety; bytes request_json[request_json_len]; out out; {
        let request = SafetyRequest::from_json(request_json)?;
        let guard = safety.acquire(&request)?;
        out.write(handle::into_raw(Permit(Mutex::new(guard))));
        Ok(())
    })
}

fn warnings_json(warnings: &[SafetyError]) -> Vec<String> {
    warnings.iter().map(ToString::to_string).collect()
}

/// Whether a request would be admitted now, claiming nothing. Writes
/// `{"warnings": [...], "redacted": text or null}`.
///
/// Errors: as `net_safety_acquire`.
///
/// # Safety
/// As `net_safety_acquire`, with `out` a `net_bytes_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_safety_check(
    safety: *const net_safety_t,
    request_json: *const u8,
    request_json_len: usize,
    out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle safety; bytes request_json[request_json_len]; out out; {
        let request = SafetyRequest::from_json(request_json)?;
        let clearance = safety.check(&request)?;
        out.write(to_json_bytes(&json!({
            "warnings": warnings_json(&clearance.warnings),
            "redacted": clearance.redacted,
        })));
        Ok(())
    })
}

/// Replaces the limits (JSON, missing keys take the defaults). Permits in
/// flight keep their claims; a lower cap refuses new requests until usage
/// falls under it.
///
/// Errors: `NET_ERR_SAFETY_CONFIG` naming the bad key.
///
/// # Safety
/// `safety` is NULL or from libnet; `limits_json` is readable for its length.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_safety_set_limits(
    safety: *const net_safety_t,
    limits_json: *const u8,
    limits_json_len: usize,
) -> net_status_t {
    ffi_export!(handle safety; bytes limits_json[limits_json_len]; {
        safety.set_limits(SafetyLimits::from_json(limits_json)?);
        Ok(())
    })
}

/// The current limits as JSON (every key).
///
/// # Safety
/// `safety` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_safety_limits(
    safety: *const net_safety_t,
    out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle safety; out out; {
        out.write(to_json_bytes(&json!(safety.limits())));
        Ok(())
    })
}

/// Engages the kill switch: every acquire and check fails with
/// `NET_ERR_SAFETY_KILL_SWITCH` (naming `reason`) until
/// `net_safety_reset_kill_switch`, or, when `auto_reset_ms` is not 0, until
/// that many milliseconds have passed.
///
/// # Safety
/// `safety` is NULL or from libnet; `reason` is readable for `reason_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_safety_kill(
    safety: *const net_safety_t,
    reason: *const u8,
    reason_len: usize,
    auto_reset_ms: u64,
) -> net_status_t {
    ffi_export!(handle safety; str reason[reason_len]; {
        let auto_reset = (auto_reset_ms != 0).then_some(auto_reset_ms);
        safety.engage_kill_switch(reason, auto_reset);
        Ok(())
    })
}

/// Lifts the kill switch.
///
/// # Safety
/// `safety` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_safety_reset_kill_switch(safety: *const net_safety_t) -> net_status_t {
    ffi_export!(handle safety; {
        safety.reset_kill_switch();
        Ok(())
    })
}

/// Current usage as JSON: `{"concurrent", "memory_mb",
/// "requests_last_minute", "tokens_last_minute", "cost_last_hour_cents",
/// "sources", "kill_switch" (bool), "mode"}`.
///
/// # Safety
/// `safety` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_safety_usage(
    safety: *const net_safety_t,
    out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle safety; out out; {
        let now_ms = safety.now_ms();
        let mut usage = json!(safety.usage_at(now_ms));
        usage["kill_switch"] = json!(safety.kill_switch_engaged_at(now_ms));
        usage["mode"] = json!(safety.mode());
        out.write(to_json_bytes(&usage));
        Ok(())
    })
}

/// The audit ring as a JSON array, oldest first: `[{"at_ms", "source",
/// "kind" ("blocked", "warning", "error", "success"), "detail"}]`. With
/// `clear`, the ring is emptied in the same call.
///
/// # Safety
/// `safety` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_safety_audit(
    safety: *const net_safety_t,
    clear: bool,
    out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle safety; out out; {
        let entries = safety.audit_entries();
        if clear {
            safety.clear_audit();
        }
        out.write(to_json_bytes(&json!(entries)));
        Ok(())
    })
}

/// Frees a safety envelope. NULL-safe and idempotent; waits up to 5 s for
/// calls in flight. Permits already issued stay valid.
///
/// # Safety
/// `safety` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_safety_free(safety: *mut net_safety_t) -> net_status_t {
    super::export::run(|| handle::free(safety))
}

/// A permit's details as JSON: `{"warnings": [...], "redacted": text or
/// null, "deadline_ms", "unaccounted"}` (`deadline_ms` on the envelope's
/// clock; `unaccounted`: issued while Disabled, claims nothing).
///
/// # Safety
/// `permit` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_safety_permit_info(
    permit: *const net_safety_permit_t,
    out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle permit; out out; {
        let guard = lock(&permit.0);
        out.write(to_json_bytes(&json!({
            "warnings": warnings_json(guard.warnings()),
            "redacted": guard.redacted(),
            "deadline_ms": guard.deadline_ms(),
            "unaccounted": guard.is_unaccounted(),
        })));
        Ok(())
    })
}

/// Marks tokens and cost as really used: they stay charged to their rate
/// windows when the permit is freed (the unused rest of the reservation is
/// given back).
///
/// # Safety
/// `permit` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_safety_permit_consume(
    permit: *const net_safety_permit_t,
    tokens: u64,
    cost_cents: u64,
) -> net_status_t {
    ffi_export!(handle permit; {
        lock(&permit.0).consume(tokens, cost_cents);
        Ok(())
    })
}

/// Releases a permit's claims (the concurrency slot, memory, and the
/// unconsumed tokens and cost). NULL-safe and idempotent; waits up to 5 s
/// for calls in flight on it.
///
/// # Safety
/// `permit` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_safety_permit_free(permit: *mut net_safety_permit_t) -> net_status_t {
    super::export::run(|| handle::free(permit))
}

// ---- load balancing -----------------------------------------------------------

/// A load balancer over 32-byte endpoint ids. Thread-safe; release with
/// `net_lb_free` (selections already made stay valid and release into it).
#[allow(non_camel_case_types)]
pub struct net_lb_t {
    _opaque: [u8; 0],
}

/// A selected endpoint with a reserved connection slot, released by
/// `net_lb_selection_complete` or `net_lb_selection_free`.
#[allow(non_camel_case_types)]
pub struct net_lb_selection_t {
    _opaque: [u8; 0],
}

/// The balancer behind `net_lb_t`, with its circuit breakers' clock.
pub(crate) struct Lb {
    balancer: LoadBalancer,
    epoch: Instant,
}

impl HandleInner for Lb {}
opaque_handle!(net_lb_t => Lb, kind = b"NLBL");

/// The selection behind `net_lb_selection_t`: taken out by `complete`.
pub(crate) struct LbSelection {
    id: [u8; 32],
    probe: bool,
    epoch: Instant,
    slot: Mutex<Option<Selection>>,
}

impl HandleInner for LbSelection {}
opaque_handle!(net_lb_selection_t => LbSelection, kind = b"NLBS");

/// Length of an endpoint id.
pub const NET_LB_ENDPOINT_ID_LEN: usize = 32;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct EndpointJson {
    weight: u32,
    health: Health,
    metrics: EndpointMetrics,
    tags: Vec<String>,
    priority: u8,
    enabled: bool,
    zone: Option<String>,
}

impl Default for EndpointJson {
    fn default() -> Self {
        let e = Endpoint::new([0; 32]);
        Self {
            weight: e.weight,
            health: e.health,
            metrics: e.metrics,
            tags: e.tags,
            priority: e.priority,
            enabled: e.enabled,
            zone: e.zone,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RequestJson {
    routing_key: Option<String>,
    session_id: Option<String>,
    request_id: Option<String>,
    required_tags: Vec<String>,
    zone: Option<String>,
}

fn lb_json<T: for<'a> Deserialize<'a> + Default>(bytes: &[u8], name: &str) -> Result<T, FfiError> {
    if bytes.is_empty() {
        return Ok(T::default());
    }
    let value = bounded_json(bytes, name, net_status_t::NET_ERR_LB_CONFIG)?;
    serde_json::from_value(value)
        .map_err(|e| FfiError::new(net_status_t::NET_ERR_LB_CONFIG, format!("{name}: {e}")))
}

/// Creates a load balancer from JSON settings (`{"strategy":
/// "power_of_two", "max_connections", "circuit_failures",
/// "circuit_recovery_ms", "zone_aware", "zone_fallback", "local_zone",
/// "ring_points", "max_attempts", "seed"}`, every key optional; length 0:
/// round robin with the COMPUTE.md §7 defaults).
///
/// Errors: `NET_ERR_LB_CONFIG` naming the bad key.
///
/// # Safety
/// `config_json` is readable for its length; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_lb_new(
    config_json: *const u8,
    config_json_len: usize,
    out: *mut *mut net_lb_t,
) -> net_status_t {
    ffi_export!(bytes config_json[config_json_len]; out out; {
        let config: LbConfig = lb_json(config_json, "load balancer config")?;
        out.write(handle::into_raw(Lb {
            balancer: LoadBalancer::new(config),
            epoch: Instant::now(),
        }));
        Ok(())
    })
}

/// Adds an endpoint with a 32-byte id and JSON options (`{"weight",
/// "health" ("healthy", "degraded", "unhealthy", "unknown"), "tags",
/// "zone", "enabled", "priority", "metrics": {"cpu", "memory",
/// "response_ms", "error_rate"}}`, every key optional; length 0: healthy,
/// weight 100).
///
/// Errors: `NET_ERR_LB_DUPLICATE_ENDPOINT`; `NET_ERR_LB_CONFIG` naming the
/// bad key; `NET_ERR_INVALID_ARGUMENT` unless the id is 32 bytes.
///
/// # Safety
/// `lb` is NULL or from libnet; the buffers are readable for their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_lb_add(
    lb: *const net_lb_t,
    id: *const u8,
    id_len: usize,
    options_json: *const u8,
    options_json_len: usize,
) -> net_status_t {
    ffi_export!(handle lb; array id[id_len] NET_LB_ENDPOINT_ID_LEN; bytes options_json[options_json_len]; {
        let o: EndpointJson = lb_json(options_json, "endpoint options")?;
        lb.balancer.add(Endpoint {
            id: *id,
            weight: o.weight,
            health: o.health,
            metrics: o.metrics,
            tags: o.tags,
            priority: o.priority,
            enabled: o.enabled,
            zone: o.zone,
        })?;
        Ok(())
    })
}

/// Removes an endpoint (selections on it still release harmlessly).
///
/// Errors: `NET_ERR_LB_UNKNOWN_ENDPOINT`.
///
/// # Safety
/// `lb` is NULL or from libnet; `id` is readable for `id_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_lb_remove(
    lb: *const net_lb_t,
    id: *const u8,
    id_len: usize,
) -> net_status_t {
    ffi_export!(handle lb; array id[id_len] NET_LB_ENDPOINT_ID_LEN; {
        lb.balancer.remove(id)?;
        Ok(())
    })
}

/// Picks an endpoint for a request (`{"routing_key", "session_id",
/// "request_id", "required_tags", "zone"}`, every key optional; length 0:
/// no constraints) and reserves a connection on it until the selection is
/// completed or freed.
///
/// Errors: `NET_ERR_LB_NO_ENDPOINT` (the message says why);
/// `NET_ERR_LB_CONFIG` naming a bad key.
///
/// # Safety
/// `lb` is NULL or from libnet; `request_json` is readable for its length;
/// `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_lb_select(
    lb: *const net_lb_t,
    request_json: *const u8,
    request_json_len: usize,
    out: *mut *mut net_lb_selection_t,
) -> net_status_t {
    ffi_export!(handle lb; bytes request_json[request_json_len]; out out; {
        let r: RequestJson = lb_json(request_json, "request")?;
        let ctx = RequestContext {
            routing_key: r.routing_key,
            session_id: r.session_id,
            request_id: r.request_id,
            required_tags: r.required_tags,
            zone: r.zone,
        };
        let selection = lb.balancer.select_at(&ctx, millis_since(lb.epoch))?;
        out.write(handle::into_raw(LbSelection {
            id: selection.id(),
            probe: selection.is_probe(),
            epoch: lb.epoch,
            slot: Mutex::new(Some(selection)),
        }));
        Ok(())
    })
}

/// The endpoints as a JSON array in insertion order: `[{"id" (hex),
/// "weight", "health", "enabled", "zone", "tags", "priority",
/// "connections", "circuit_open"}]`.
///
/// # Safety
/// `lb` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_lb_endpoints(
    lb: *const net_lb_t,
    out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle lb; out out; {
        let list: Vec<Value> = lb
            .balancer
            .endpoints()
            .into_iter()
            .map(|e| {
                // Removed between the two reads: report it idle.
                let connections = lb.balancer.connections(&e.id).unwrap_or(0);
                let circuit_open = lb.balancer.circuit_open(&e.id).unwrap_or(false);
                json!({
                    "id": e.id.iter().map(|b| format!("{b:02x}")).collect::<String>(),
                    "weight": e.weight,
                    "health": e.health,
                    "enabled": e.enabled,
                    "zone": e.zone,
                    "tags": e.tags,
                    "priority": e.priority,
                    "connections": connections,
                    "circuit_open": circuit_open,
                })
            })
            .collect();
        out.write(to_json_bytes(&Value::Array(list)));
        Ok(())
    })
}

/// Frees a load balancer. NULL-safe and idempotent; waits up to 5 s for
/// calls in flight. Selections already made stay valid.
///
/// # Safety
/// `lb` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_lb_free(lb: *mut net_lb_t) -> net_status_t {
    super::export::run(|| handle::free(lb))
}

/// The selected endpoint's 32-byte id, and whether the selection is its
/// circuit's half-open probe.
///
/// # Safety
/// `selection` is NULL or from libnet; `id_out` and `probe_out` are valid
/// for one write each.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_lb_selection_id(
    selection: *const net_lb_selection_t,
    id_out: *mut net_bytes_t,
    probe_out: *mut bool,
) -> net_status_t {
    ffi_export!(handle selection; out id_out; out probe_out; {
        id_out.write(net_bytes_t::from_slice(&selection.id));
        probe_out.write(selection.probe);
        Ok(())
    })
}

/// Reports the request's outcome and releases the connection slot: a
/// success closes a half-open circuit, failures count towards opening one.
/// The handle must still be freed.
///
/// Errors: `NET_ERR_INVALID_ARGUMENT` when already completed.
///
/// # Safety
/// `selection` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_lb_selection_complete(
    selection: *const net_lb_selection_t,
    ok: bool,
) -> net_status_t {
    ffi_export!(handle selection; {
        let taken = lock(&selection.slot)
            .take()
            .ok_or_else(|| FfiError::invalid_argument("the selection was already completed"))?;
        taken.complete(ok, millis_since(selection.epoch));
        Ok(())
    })
}

/// Frees a selection, releasing its connection slot if it was not
/// completed (without touching the circuit). NULL-safe and idempotent;
/// waits up to 5 s for calls in flight on it.
///
/// # Safety
/// `selection` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_lb_selection_free(selection: *mut net_lb_selection_t) -> net_status_t {
    super::export::run(|| handle::free(selection))
}
