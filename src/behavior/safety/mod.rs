//! The safety envelope (COMPUTE.md §4.6): a kill switch, concurrency /
//! memory / cost caps, global and per-source request rates, a token rate
//! with burst, content policies and an audit ring, in three modes
//! (Enforce, AuditOnly, Disabled).
//!
//! - [`window`]: the sliding-window sum behind every rate.
//! - [`content`]: content policies (regex Block / Require / Redact, size).
//! - [`audit`]: the bounded audit ring.
//!
//! Departs from v0.11 (§8 item 11):
//! - **Exact caps.** Every counter lives under one lock; `acquire` checks
//!   all limits and records all of them in the same critical section, so
//!   there is nothing to roll back and racing acquirers never exceed a cap
//!   (v0.11 adds step by step and rolls back with raw subtractions, one
//!   of which wraps to 2^64 − 1 when a window reset intervenes, and its
//!   contention test tolerates one admission over the cap).
//! - **No boundary bursts.** Rates are sliding windows
//!   ([`window::SlidingWindow`]): never more than the limit in any
//!   60-second interval (the hourly cost in any hour, counted in 1 s
//!   buckets, conservatively). A limit of 0 admits nothing.
//! - **Releases never underflow**: every release subtracts saturating, a
//!   guard issued while Disabled carries no claim and releases nothing
//!   after a switch to Enforce, and a refund for a window bucket that has
//!   already expired does nothing.
//! - **Content policies apply on `acquire` too**, with real regexes, and
//!   `Redact` hands back the redacted content.
//! - Time is passed in (`*_at(now_ms)`); the plain variants read the
//!   envelope's own monotonic clock.
//!
//! Tokens and cost: `acquire` reserves the request's tokens against the
//! tokens-per-minute window and its cost against the hourly cost window.
//! [`SafetyGuard::consume`] marks what was really used; when the guard
//! drops, the unused part of the reservation is given back (all of it if
//! nothing was consumed), with the concurrency slot and the memory.

pub mod audit;
pub mod content;
pub mod json;
pub mod window;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use audit::{AUDIT_CAPACITY, AuditConfig, AuditEntry, AuditKind};
pub use content::{ContentPolicy, PolicyAction, PolicyRule, REDACTED};
use window::{Receipt, SlidingWindow};

/// Length of the request and token rate windows.
pub const RATE_WINDOW_MS: u64 = 60_000;
/// Length of the cost window.
pub const COST_WINDOW_MS: u64 = 3_600_000;
/// Bucket size of the cost window (it counts a bucket until all of it has
/// left the hour).
pub const COST_GRANULARITY_MS: u64 = 1_000;

/// Why the envelope refused (or, in AuditOnly, warned about) a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SafetyError {
    /// The kill switch is engaged; wait for the reset.
    #[error("kill switch engaged: {reason}")]
    KillSwitch {
        /// Why it was engaged.
        reason: String,
    },
    /// `max_concurrent` requests are in flight; retry after one ends.
    #[error("{max} concurrent requests already in flight")]
    ConcurrencyLimit {
        /// The cap.
        max: u64,
    },
    /// The memory claim does not fit.
    #[error("memory: {requested} MB requested, {in_use} in use, cap {max}")]
    MemoryLimit {
        /// Claimed.
        requested: u64,
        /// Held by requests in flight.
        in_use: u64,
        /// The cap.
        max: u64,
    },
    /// The request claims more tokens than one request may.
    #[error("{requested} tokens requested, at most {max} per request")]
    TokensPerRequest {
        /// Claimed.
        requested: u64,
        /// The cap.
        max: u64,
    },
    /// The hourly cost budget is spent.
    #[error("cost: {requested} cents requested, {spent} spent this hour, cap {max}")]
    CostLimit {
        /// Claimed.
        requested: u64,
        /// Spent in the last hour.
        spent: u64,
        /// The cap.
        max: u64,
    },
    /// The global request rate is reached.
    #[error("global rate limit of {max} requests per minute")]
    GlobalRateLimit {
        /// The cap.
        max: u64,
    },
    /// This source's request rate is reached.
    #[error("source {source_name:?} is over {max} requests per minute")]
    SourceRateLimit {
        /// The source.
        source_name: String,
        /// The cap.
        max: u64,
    },
    /// The token rate (with burst) is reached.
    #[error("tokens: {requested} requested, {used} used this minute, cap {max}")]
    TokenRateLimit {
        /// Claimed.
        requested: u64,
        /// Used in the last minute.
        used: u64,
        /// The cap (limit × burst).
        max: u64,
    },
    /// The content is larger than a MaxSize policy allows.
    #[error("content of {size} bytes exceeds policy {policy:?} ({max})")]
    ContentTooLarge {
        /// Policy name.
        policy: String,
        /// Content size.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// The content matches a Block policy.
    #[error("content blocked by policy {policy:?}")]
    BlockedContent {
        /// Policy name.
        policy: String,
    },
    /// The content lacks what a Require policy asks for.
    #[error("content does not satisfy policy {policy:?}")]
    MissingRequiredContent {
        /// Policy name.
        policy: String,
    },
    /// Too many distinct sources are being tracked.
    #[error("more than {max} sources tracked")]
    TooManySources {
        /// The cap.
        max: usize,
    },
    /// A claim would overflow a counter (a nonsensical request).
    #[error("{what} would overflow")]
    Overflow {
        /// Which counter.
        what: &'static str,
    },
    /// A configuration, limits or request JSON is malformed, too large, or
    /// has an unknown key or a wrong type (the message names it).
    #[error("{0}")]
    InvalidConfig(String),
    /// A content-policy pattern does not compile or is too large.
    #[error("invalid pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern (first 128 characters).
        pattern: String,
        /// The compiler's complaint or the bound exceeded.
        reason: String,
    },
}

/// How the envelope treats violations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SafetyMode {
    /// Refuse violations (the default).
    #[default]
    Enforce,
    /// Admit, count, and audit violations as warnings (the kill switch
    /// still refuses).
    AuditOnly,
    /// Admit everything, count nothing.
    Disabled,
}

impl SafetyMode {
    fn to_u8(self) -> u8 {
        match self {
            Self::Enforce => 0,
            Self::AuditOnly => 1,
            Self::Disabled => 2,
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::AuditOnly,
            2 => Self::Disabled,
            _ => Self::Enforce,
        }
    }
}

/// The caps (COMPUTE.md §7 defaults). The JSON form names these fields;
/// missing ones take the default and unknown ones are an error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SafetyLimits {
    /// Requests in flight (1 000).
    pub max_concurrent: u64,
    /// Tokens one request may claim (128 000).
    pub max_tokens_per_request: u64,
    /// Memory held by requests in flight, MB (16 384).
    pub max_memory_mb: u64,
    /// Time a request may run, ms (300 000): the guard's deadline.
    pub max_time_ms: u64,
    /// Cost in any hour, cents (10 000).
    pub max_cost_per_hour_cents: u64,
    /// Requests in any minute, all sources (10 000).
    pub global_rpm: u64,
    /// Requests in any minute per source (1 000).
    pub per_source_rpm: u64,
    /// Tokens in any minute (10 000 000), times `burst`.
    pub tokens_per_minute: u64,
    /// Token-rate multiplier (2.0): the token cap is
    /// `floor(tokens_per_minute × burst)`.
    pub burst: f64,
    /// Distinct sources tracked at once (100 000).
    pub max_sources: usize,
}

impl Default for SafetyLimits {
    fn default() -> Self {
        Self {
            max_concurrent: 1_000,
            max_tokens_per_request: 128_000,
            max_memory_mb: 16_384,
            max_time_ms: 300_000,
            max_cost_per_hour_cents: 10_000,
            global_rpm: 10_000,
            per_source_rpm: 1_000,
            tokens_per_minute: 10_000_000,
            burst: 2.0,
            max_sources: 100_000,
        }
    }
}

impl SafetyLimits {
    /// `floor(tokens_per_minute × burst)`, saturating (a NaN or negative
    /// burst counts as 0).
    pub fn token_cap(&self) -> u64 {
        let cap = self.tokens_per_minute as f64 * self.burst;
        if cap.is_nan() || cap <= 0.0 {
            0
        } else {
            // `as` saturates at u64::MAX.
            cap.floor() as u64
        }
    }
}

/// Everything an envelope is built from.
#[derive(Debug, Clone, Default)]
pub struct SafetyConfig {
    /// The caps.
    pub limits: SafetyLimits,
    /// Initial mode.
    pub mode: SafetyMode,
    /// Content policies, applied in order.
    pub policies: Vec<ContentPolicy>,
    /// What the audit ring keeps.
    pub audit: AuditConfig,
}

/// A request as the envelope sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SafetyRequest {
    /// Who asks (per-source rate limit key).
    pub source: String,
    /// Content the policies inspect.
    pub content: Option<String>,
    /// Tokens claimed.
    pub tokens: u64,
    /// Memory claimed, MB.
    pub memory_mb: u64,
    /// Cost claimed, cents.
    pub cost_cents: u64,
}

impl SafetyRequest {
    /// A request from `source` claiming nothing.
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            ..Self::default()
        }
    }

    /// Sets the content.
    pub fn content(mut self, content: impl Into<String>) -> Self {
        self.content = Some(content.into());
        self
    }

    /// Sets the tokens claimed.
    pub fn tokens(mut self, tokens: u64) -> Self {
        self.tokens = tokens;
        self
    }

    /// Sets the memory claimed.
    pub fn memory_mb(mut self, mb: u64) -> Self {
        self.memory_mb = mb;
        self
    }

    /// Sets the cost claimed.
    pub fn cost_cents(mut self, cents: u64) -> Self {
        self.cost_cents = cents;
        self
    }
}

/// An admission by [`SafetyEnvelope::check_at`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Clearance {
    /// Violations admitted anyway (AuditOnly, Warn/Log policies).
    pub warnings: Vec<SafetyError>,
    /// The content with redactions applied, if a Redact policy matched.
    pub redacted: Option<String>,
}

/// Current usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafetyUsage {
    /// Requests in flight.
    pub concurrent: u64,
    /// Memory held, MB.
    pub memory_mb: u64,
    /// Requests admitted in the last minute.
    pub requests_last_minute: u64,
    /// Tokens reserved in the last minute.
    pub tokens_last_minute: u64,
    /// Cost reserved in the last hour.
    pub cost_last_hour_cents: u64,
    /// Sources tracked.
    pub sources: usize,
}

#[derive(Debug)]
struct Kill {
    reason: String,
    engaged_at_ms: u64,
    auto_reset_after_ms: Option<u64>,
}

struct State {
    /// The caps, under the same lock as the counters: an update applies
    /// between two admissions, never inside one.
    limits: SafetyLimits,
    concurrent: u64,
    memory_mb: u64,
    global: SlidingWindow,
    tokens: SlidingWindow,
    cost: SlidingWindow,
    sources: HashMap<String, SlidingWindow>,
    last_source_gc_ms: u64,
    kill: Option<Kill>,
}

fn rate_window() -> SlidingWindow {
    SlidingWindow::new(RATE_WINDOW_MS, 1)
}

impl State {
    fn new(limits: SafetyLimits) -> Self {
        Self {
            limits,
            concurrent: 0,
            memory_mb: 0,
            global: rate_window(),
            tokens: rate_window(),
            cost: SlidingWindow::new(COST_WINDOW_MS, COST_GRANULARITY_MS),
            sources: HashMap::new(),
            last_source_gc_ms: 0,
            kill: None,
        }
    }

    fn evict(&mut self, now_ms: u64) {
        self.global.evict(now_ms);
        self.tokens.evict(now_ms);
        self.cost.evict(now_ms);
        if now_ms.saturating_sub(self.last_source_gc_ms) >= RATE_WINDOW_MS {
            self.gc_sources(now_ms);
        }
    }

    /// Brings `source`'s window up to `now_ms`; when a new source would not
    /// fit, sweeps the idle ones first.
    fn evict_source(&mut self, source: &str, now_ms: u64, max_sources: usize) {
        if let Some(w) = self.sources.get_mut(source) {
            w.evict(now_ms);
        } else if self.sources.len() >= max_sources {
            self.gc_sources(now_ms);
        }
    }

    fn gc_sources(&mut self, now_ms: u64) {
        self.sources.retain(|_, w| {
            w.evict(now_ms);
            !w.is_empty()
        });
        self.last_source_gc_ms = now_ms;
    }

    /// The kill switch's reason if it holds at `now_ms` (lazy auto-reset).
    fn kill_reason(&mut self, now_ms: u64) -> Option<String> {
        let kill = self.kill.as_ref()?;
        if let Some(after) = kill.auto_reset_after_ms
            && now_ms.saturating_sub(kill.engaged_at_ms) >= after
        {
            self.kill = None;
            return None;
        }
        Some(kill.reason.clone())
    }
}

struct Inner {
    policies: Vec<ContentPolicy>,
    audit_config: AuditConfig,
    mode: AtomicU8,
    state: Mutex<State>,
    audit: Mutex<audit::AuditRing>,
    epoch: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No critical section here can panic midway; a poison from elsewhere
    // must not take the envelope down.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What an acquire recorded, released by the guard.
#[derive(Debug, Default)]
struct Claim {
    concurrent: bool,
    memory_mb: u64,
    tokens: Option<Receipt>,
    cost: Option<Receipt>,
}

/// The safety envelope. Cheap to clone (shared state); every method takes
/// `&self` and is safe from many threads.
#[derive(Clone)]
pub struct SafetyEnvelope {
    inner: Arc<Inner>,
}

impl Default for SafetyEnvelope {
    fn default() -> Self {
        Self::new(SafetyConfig::default())
    }
}

impl SafetyEnvelope {
    /// An envelope with this configuration.
    pub fn new(config: SafetyConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                policies: config.policies,
                audit_config: config.audit,
                mode: AtomicU8::new(config.mode.to_u8()),
                state: Mutex::new(State::new(config.limits)),
                audit: Mutex::new(audit::AuditRing::default()),
                epoch: Instant::now(),
            }),
        }
    }

    /// Milliseconds since the envelope was created (its own monotonic
    /// clock, used by the variants without `_at`).
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The caps.
    pub fn limits(&self) -> SafetyLimits {
        lock(&self.inner.state).limits
    }

    /// Replaces the caps. Requests in flight keep what they claimed (a
    /// lower cap refuses new requests until usage falls under it); the
    /// rate windows keep their history, so a lowered rate applies to the
    /// requests already counted in the window.
    pub fn set_limits(&self, limits: SafetyLimits) {
        lock(&self.inner.state).limits = limits;
    }

    /// The current mode.
    pub fn mode(&self) -> SafetyMode {
        SafetyMode::from_u8(self.inner.mode.load(Ordering::Acquire))
    }

    /// Switches mode. Guards already issued keep releasing what they
    /// claimed (and only that).
    pub fn set_mode(&self, mode: SafetyMode) {
        self.inner.mode.store(mode.to_u8(), Ordering::Release);
    }

    /// Engages the kill switch at `now_ms`; with `auto_reset_after_ms` it
    /// lifts itself that long after (checked lazily by the next call).
    pub fn engage_kill_switch_at(
        &self,
        reason: impl Into<String>,
        now_ms: u64,
        auto_reset_after_ms: Option<u64>,
    ) {
        lock(&self.inner.state).kill = Some(Kill {
            reason: reason.into(),
            engaged_at_ms: now_ms,
            auto_reset_after_ms,
        });
    }

    /// [`SafetyEnvelope::engage_kill_switch_at`] now.
    pub fn engage_kill_switch(&self, reason: impl Into<String>, auto_reset_after_ms: Option<u64>) {
        self.engage_kill_switch_at(reason, self.now_ms(), auto_reset_after_ms);
    }

    /// Lifts the kill switch.
    pub fn reset_kill_switch(&self) {
        lock(&self.inner.state).kill = None;
    }

    /// Whether the kill switch holds at `now_ms`.
    pub fn kill_switch_engaged_at(&self, now_ms: u64) -> bool {
        lock(&self.inner.state).kill_reason(now_ms).is_some()
    }

    /// Would `req` be admitted at `now_ms`? Consumes nothing.
    ///
    /// # Errors
    /// The first violation, in Enforce mode (the kill switch in AuditOnly
    /// too); see [`SafetyError`].
    pub fn check_at(&self, req: &SafetyRequest, now_ms: u64) -> Result<Clearance, SafetyError> {
        self.admit(req, now_ms, false)
            .map(|(clearance, _, _)| clearance)
    }

    /// [`SafetyEnvelope::check_at`] now.
    ///
    /// # Errors
    /// As [`SafetyEnvelope::check_at`].
    pub fn check(&self, req: &SafetyRequest) -> Result<Clearance, SafetyError> {
        self.check_at(req, self.now_ms())
    }

    /// Admits `req` at `now_ms` and claims its resources until the guard
    /// drops.
    ///
    /// # Errors
    /// As [`SafetyEnvelope::check_at`]; nothing is claimed then.
    pub fn acquire_at(&self, req: &SafetyRequest, now_ms: u64) -> Result<SafetyGuard, SafetyError> {
        let (clearance, claim, max_time_ms) = self.admit(req, now_ms, true)?;
        Ok(SafetyGuard {
            inner: self.inner.clone(),
            claim,
            consumed_tokens: 0,
            consumed_cost: 0,
            warnings: clearance.warnings,
            redacted: clearance.redacted,
            deadline_ms: now_ms.saturating_add(max_time_ms),
        })
    }

    /// [`SafetyEnvelope::acquire_at`] now.
    ///
    /// # Errors
    /// As [`SafetyEnvelope::check_at`].
    pub fn acquire(&self, req: &SafetyRequest) -> Result<SafetyGuard, SafetyError> {
        self.acquire_at(req, self.now_ms())
    }

    /// Usage at `now_ms`.
    pub fn usage_at(&self, now_ms: u64) -> SafetyUsage {
        let mut st = lock(&self.inner.state);
        st.evict(now_ms);
        SafetyUsage {
            concurrent: st.concurrent,
            memory_mb: st.memory_mb,
            requests_last_minute: st.global.total(),
            tokens_last_minute: st.tokens.total(),
            cost_last_hour_cents: st.cost.total(),
            sources: st.sources.len(),
        }
    }

    /// The audit ring, oldest first.
    pub fn audit_entries(&self) -> Vec<AuditEntry> {
        lock(&self.inner.audit).entries()
    }

    /// Empties the audit ring.
    pub fn clear_audit(&self) {
        lock(&self.inner.audit).clear();
    }

    fn audit(&self, now_ms: u64, source: &str, kind: AuditKind, detail: String) {
        let entry = AuditEntry {
            at_ms: now_ms,
            source: source.to_owned(),
            kind,
            detail,
        };
        lock(&self.inner.audit).push(&self.inner.audit_config, entry);
    }

    /// The one decision path of `check` (record = false) and `acquire`.
    fn admit(
        &self,
        req: &SafetyRequest,
        now_ms: u64,
        record: bool,
    ) -> Result<(Clearance, Claim, u64), SafetyError> {
        let mode = self.mode();
        if mode == SafetyMode::Disabled {
            let max_time_ms = self.limits().max_time_ms;
            return Ok((Clearance::default(), Claim::default(), max_time_ms));
        }
        let enforce = mode == SafetyMode::Enforce;
        // Regexes run outside the lock.
        let verdict = req
            .content
            .as_deref()
            .map(|c| content::apply(&self.inner.policies, c))
            .unwrap_or_default();
        let mut warnings = Vec::new();
        let mut refusal = None;
        for (violation, action) in verdict.violations {
            if enforce && action == PolicyAction::Block && refusal.is_none() {
                refusal = Some(violation);
            } else {
                warnings.push(violation);
            }
        }
        let mut claim = Claim::default();
        let max_time_ms;
        let outcome = {
            let mut st = lock(&self.inner.state);
            let limits = st.limits;
            let limits = &limits;
            max_time_ms = limits.max_time_ms;
            if let Some(reason) = st.kill_reason(now_ms) {
                Err(SafetyError::KillSwitch { reason })
            } else if let Some(refusal) = refusal {
                Err(refusal)
            } else {
                st.evict(now_ms);
                st.evict_source(&req.source, now_ms, limits.max_sources);
                let mut violations = limit_violations(&st, limits, req);
                if enforce && !violations.is_empty() {
                    Err(violations.swap_remove(0))
                } else {
                    warnings.append(&mut violations);
                    if record {
                        claim = commit(&mut st, limits, req, now_ms);
                    }
                    Ok(())
                }
            }
        };
        match outcome {
            Err(e) => {
                let kind = match e {
                    SafetyError::Overflow { .. } => AuditKind::Error,
                    _ => AuditKind::Blocked,
                };
                self.audit(now_ms, &req.source, kind, e.to_string());
                Err(e)
            }
            Ok(()) => {
                for w in &warnings {
                    self.audit(now_ms, &req.source, AuditKind::Warning, w.to_string());
                }
                if warnings.is_empty() {
                    self.audit(now_ms, &req.source, AuditKind::Success, "admitted".into());
                }
                Ok((
                    Clearance {
                        warnings,
                        redacted: verdict.redacted,
                    },
                    claim,
                    max_time_ms,
                ))
            }
        }
    }
}

/// Every cap `req` would break at this state, in a fixed order.
fn limit_violations(st: &State, limits: &SafetyLimits, req: &SafetyRequest) -> Vec<SafetyError> {
    let mut out = Vec::new();
    if req.tokens > limits.max_tokens_per_request {
        out.push(SafetyError::TokensPerRequest {
            requested: req.tokens,
            max: limits.max_tokens_per_request,
        });
    }
    if st.concurrent >= limits.max_concurrent {
        out.push(SafetyError::ConcurrencyLimit {
            max: limits.max_concurrent,
        });
    }
    match st.memory_mb.checked_add(req.memory_mb) {
        None => out.push(SafetyError::Overflow { what: "memory" }),
        Some(m) if m > limits.max_memory_mb => out.push(SafetyError::MemoryLimit {
            requested: req.memory_mb,
            in_use: st.memory_mb,
            max: limits.max_memory_mb,
        }),
        _ => {}
    }
    if !st.cost.fits(req.cost_cents, limits.max_cost_per_hour_cents) {
        out.push(SafetyError::CostLimit {
            requested: req.cost_cents,
            spent: st.cost.total(),
            max: limits.max_cost_per_hour_cents,
        });
    }
    if !st.global.fits(1, limits.global_rpm) {
        out.push(SafetyError::GlobalRateLimit {
            max: limits.global_rpm,
        });
    }
    let source_fits = match st.sources.get(&req.source) {
        // `State::evict_source` ran first: the window is current.
        Some(w) => w.fits(1, limits.per_source_rpm),
        None => {
            if st.sources.len() >= limits.max_sources {
                out.push(SafetyError::TooManySources {
                    max: limits.max_sources,
                });
            }
            1 <= limits.per_source_rpm
        }
    };
    if !source_fits {
        out.push(SafetyError::SourceRateLimit {
            source_name: req.source.clone(),
            max: limits.per_source_rpm,
        });
    }
    let token_cap = limits.token_cap();
    if !st.tokens.fits(req.tokens, token_cap) {
        out.push(SafetyError::TokenRateLimit {
            requested: req.tokens,
            used: st.tokens.total(),
            max: token_cap,
        });
    }
    out
}

/// Records `req`'s claims (the caps, overflow included, were checked under
/// the same lock; in AuditOnly the counters saturate).
fn commit(st: &mut State, limits: &SafetyLimits, req: &SafetyRequest, now_ms: u64) -> Claim {
    st.concurrent = st.concurrent.saturating_add(1);
    st.memory_mb = st.memory_mb.saturating_add(req.memory_mb);
    st.global.record(now_ms, 1);
    if let Some(w) = st.sources.get_mut(&req.source) {
        w.record(now_ms, 1);
    } else if st.sources.len() < limits.max_sources {
        let mut w = rate_window();
        w.record(now_ms, 1);
        st.sources.insert(req.source.clone(), w);
    }
    Claim {
        concurrent: true,
        memory_mb: req.memory_mb,
        tokens: Some(st.tokens.record(now_ms, req.tokens)),
        cost: Some(st.cost.record(now_ms, req.cost_cents)),
    }
}

/// An admitted request's claims. Dropping it releases the concurrency
/// slot and the memory, and gives back the unconsumed tokens and cost —
/// all saturating, so nothing can underflow, whatever the mode did in
/// between.
pub struct SafetyGuard {
    inner: Arc<Inner>,
    claim: Claim,
    consumed_tokens: u64,
    consumed_cost: u64,
    warnings: Vec<SafetyError>,
    redacted: Option<String>,
    deadline_ms: u64,
}

impl SafetyGuard {
    /// Marks tokens and cost as really used: they stay charged to their
    /// windows after the guard drops (up to what was reserved).
    pub fn consume(&mut self, tokens: u64, cost_cents: u64) {
        self.consumed_tokens = self.consumed_tokens.saturating_add(tokens);
        self.consumed_cost = self.consumed_cost.saturating_add(cost_cents);
    }

    /// Violations admitted anyway (AuditOnly, Warn/Log policies).
    pub fn warnings(&self) -> &[SafetyError] {
        &self.warnings
    }

    /// The content with redactions applied, if a Redact policy matched.
    pub fn redacted(&self) -> Option<&str> {
        self.redacted.as_deref()
    }

    /// `now_ms` of the acquire plus `max_time_ms`.
    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms
    }

    /// Whether the guard was issued while the envelope was Disabled (it
    /// claims and releases nothing).
    pub fn is_unaccounted(&self) -> bool {
        !self.claim.concurrent
    }
}

impl Drop for SafetyGuard {
    fn drop(&mut self) {
        let claim = std::mem::take(&mut self.claim);
        if !claim.concurrent {
            return;
        }
        let mut st = lock(&self.inner.state);
        st.concurrent = st.concurrent.saturating_sub(1);
        st.memory_mb = st.memory_mb.saturating_sub(claim.memory_mb);
        if let Some(r) = claim.tokens {
            st.tokens
                .refund(r, r.amount().saturating_sub(self.consumed_tokens));
        }
        if let Some(r) = claim.cost {
            st.cost
                .refund(r, r.amount().saturating_sub(self.consumed_cost));
        }
    }
}

impl std::fmt::Debug for SafetyGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafetyGuard")
            .field("claim", &self.claim)
            .field("warnings", &self.warnings)
            .field("deadline_ms", &self.deadline_ms)
            .finish()
    }
}
