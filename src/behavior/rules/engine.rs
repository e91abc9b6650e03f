//! The rule engine: evaluation order, cooldowns, rate limits, stats
//! (COMPUTE.md §4.3).
//!
//! Departs from v0.11:
//! - `evaluate` takes `&self` and is safe from many threads at once
//!   (§8 item 12: v0.11 needs exclusive access). The rule list sits behind
//!   a read-write lock taken for reading by evaluators; each rule's
//!   release gate (cooldown and rate limit) is its own small mutex, and the
//!   decision to release and its recording happen under that one lock, so
//!   racing evaluators never release more than the limit. (v0.11 records
//!   executions after the walk.)
//! - A rate limit is a sliding window over the release timestamps (a ring
//!   of at most `max_executions` entries): at any instant, the releases in
//!   the last `window_ms` never exceed the cap. No boundary burst, no
//!   counter that can wrap.
//! - Time is passed in (`now_ms`, any monotonic millisecond clock the
//!   caller owns), so tests never read a clock; v0.11's per-result
//!   `eval_time_ns` is left to the caller for the same reason.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;

use super::RuleError;
use super::compiled::{Compiled, Paths};
use super::index::{RuleIndex, STACK_RULES};
use super::json::RuleSet;
use super::rule::{Action, Rule};

/// Why a matched rule's action was not released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Suppression {
    /// The cooldown since the last release has not elapsed.
    Cooldown,
    /// The rate limit's window is full.
    RateLimited,
}

/// What one matching rule gave (enabled, and its condition held).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleOutcome {
    /// The rule's id.
    pub rule_id: Arc<str>,
    /// The rule's name.
    pub name: Arc<str>,
    /// The action, when the match was released.
    pub action: Option<Action>,
    /// Why a match was not released.
    pub suppressed: Option<Suppression>,
    /// The walk ended here (a match of a `stop_on_match` rule).
    pub stop_processing: bool,
}

/// The result of one walk over the rules: one outcome per matching rule,
/// in evaluation order (rules that did not match leave no outcome, so a
/// walk over many rules allocates only for the few that fire).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// The matching rules, released or suppressed.
    pub outcomes: Vec<RuleOutcome>,
    /// How many rules were visited.
    pub visited: usize,
}

impl Evaluation {
    /// The released actions, in evaluation order.
    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        self.outcomes.iter().filter_map(|o| o.action.as_ref())
    }

    /// The ids of the rules that matched (released or not).
    pub fn matched_ids(&self) -> Vec<&str> {
        self.outcomes.iter().map(|o| &*o.rule_id).collect()
    }
}

/// Counters of one rule since it was added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RuleStats {
    /// Times the rule was visited.
    pub evaluations: u64,
    /// Times it matched.
    pub matches: u64,
    /// Times its action was released.
    pub executions: u64,
    /// Matches suppressed by the cooldown.
    pub suppressed_cooldown: u64,
    /// Matches suppressed by the rate limit.
    pub suppressed_rate_limit: u64,
    /// `now_ms` of the last match.
    pub last_match_ms: Option<u64>,
}

#[derive(Default)]
struct Counters {
    /// Visits by walks that did not visit every rule (tagged, stopped
    /// early); a walk over every rule counts once, engine-wide
    /// (`RuleEngine::full_walks`), instead of once per rule.
    partial_evaluations: AtomicU64,
    matches: AtomicU64,
    executions: AtomicU64,
    suppressed_cooldown: AtomicU64,
    suppressed_rate_limit: AtomicU64,
    /// `now + 1` of the last match; 0 = never.
    last_match_plus_one: AtomicU64,
}

/// Release bookkeeping: last release and the releases inside the window.
#[derive(Default)]
struct Gate {
    last_release_ms: Option<u64>,
    window: VecDeque<u64>,
}

struct Entry {
    rule: Rule,
    /// `RuleEngine::full_walks` when the rule was added.
    full_walks_at_add: u64,
    id: Arc<str>,
    name: Arc<str>,
    enabled: AtomicBool,
    gate: Mutex<Gate>,
    counters: Counters,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing under these locks can panic midway; recover rather than
    // spread a poison from an unrelated panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The rules in evaluation order and their interned paths.
#[derive(Default)]
struct Table {
    /// Sorted by descending priority, ties in insertion order.
    entries: Vec<Arc<Entry>>,
    /// `entries[i]`'s condition, compiled: one contiguous list the walk
    /// reads (an entry is read only when its condition holds).
    tests: Vec<Compiled>,
    paths: Paths,
    /// The single-comparison rules of `tests`, by field and operator.
    index: RuleIndex,
}

impl Entry {
    fn new(rule: Rule, full_walks: u64) -> Self {
        Self {
            full_walks_at_add: full_walks,
            id: Arc::from(rule.id.as_str()),
            name: Arc::from(rule.name.as_str()),
            enabled: AtomicBool::new(rule.enabled),
            gate: Mutex::new(Gate::default()),
            counters: Counters::default(),
            rule,
        }
    }

    fn snapshot(&self) -> Rule {
        let mut rule = self.rule.clone();
        rule.enabled = self.enabled.load(Ordering::Relaxed);
        rule
    }

    /// Decides and records a release atomically.
    fn try_release(&self, now_ms: u64) -> Result<(), Suppression> {
        let mut gate = lock(&self.gate);
        if let (Some(cooldown), Some(last)) = (self.rule.cooldown_ms, gate.last_release_ms) {
            // A clock that went backwards reads as no time elapsed.
            if now_ms.saturating_sub(last) < cooldown {
                return Err(Suppression::Cooldown);
            }
        }
        if let Some(limit) = self.rule.rate_limit {
            while gate
                .window
                .front()
                .is_some_and(|&t| now_ms.saturating_sub(t) >= limit.window_ms)
            {
                gate.window.pop_front();
            }
            if gate.window.len() >= limit.max_executions as usize {
                return Err(Suppression::RateLimited);
            }
            gate.window.push_back(now_ms);
        }
        gate.last_release_ms = Some(now_ms);
        Ok(())
    }

    /// The outcome of a rule whose condition held (`None` when disabled).
    fn on_match(&self, now_ms: u64) -> Option<RuleOutcome> {
        let c = &self.counters;
        if !self.enabled.load(Ordering::Relaxed) {
            return None;
        }
        c.matches.fetch_add(1, Ordering::Relaxed);
        c.last_match_plus_one
            .store(now_ms.saturating_add(1), Ordering::Relaxed);
        let mut outcome = RuleOutcome {
            rule_id: self.id.clone(),
            name: self.name.clone(),
            action: None,
            suppressed: None,
            stop_processing: self.rule.stop_on_match,
        };
        match self.try_release(now_ms) {
            Ok(()) => {
                c.executions.fetch_add(1, Ordering::Relaxed);
                outcome.action = Some(self.rule.action.clone());
            }
            Err(why) => {
                let counter = match why {
                    Suppression::Cooldown => &c.suppressed_cooldown,
                    Suppression::RateLimited => &c.suppressed_rate_limit,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                outcome.suppressed = Some(why);
            }
        }
        Some(outcome)
    }

    fn stats(&self, full_walks: u64) -> RuleStats {
        let c = &self.counters;
        let last = c.last_match_plus_one.load(Ordering::Relaxed);
        RuleStats {
            evaluations: full_walks.saturating_sub(self.full_walks_at_add)
                + c.partial_evaluations.load(Ordering::Relaxed),
            matches: c.matches.load(Ordering::Relaxed),
            executions: c.executions.load(Ordering::Relaxed),
            suppressed_cooldown: c.suppressed_cooldown.load(Ordering::Relaxed),
            suppressed_rate_limit: c.suppressed_rate_limit.load(Ordering::Relaxed),
            last_match_ms: last.checked_sub(1),
        }
    }
}

/// A set of rules evaluated against JSON contexts. Shareable across
/// threads (`Arc<RuleEngine>`); every method takes `&self`.
#[derive(Default)]
pub struct RuleEngine {
    rules: RwLock<Table>,
    evaluations: AtomicU64,
    /// Walks that visited every rule (each rule's visit count includes
    /// those since it was added).
    full_walks: AtomicU64,
}

impl RuleEngine {
    /// An empty engine.
    pub fn new() -> Self {
        Self::default()
    }

    /// An engine holding the rules of `set`.
    ///
    /// # Errors
    /// As [`RuleEngine::add_all`].
    pub fn from_rule_set(set: RuleSet) -> Result<Self, RuleError> {
        let engine = Self::new();
        engine.add_all(set.rules)?;
        Ok(engine)
    }

    fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.rules.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.rules.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a rule after the rules of equal or higher priority.
    ///
    /// # Errors
    /// [`RuleError::DuplicateId`] if a rule with this id is present;
    /// [`RuleError::InvalidRule`] from [`Rule::validate`].
    pub fn add(&self, rule: Rule) -> Result<(), RuleError> {
        self.add_all([rule])
    }

    /// Adds several rules, all or none.
    ///
    /// # Errors
    /// As [`RuleEngine::add`], for the first offending rule; nothing is
    /// added then.
    pub fn add_all(&self, rules: impl IntoIterator<Item = Rule>) -> Result<(), RuleError> {
        let rules: Vec<Rule> = rules.into_iter().collect();
        let mut table = self.write();
        let table = &mut *table;
        let mut seen: std::collections::HashSet<&str> =
            table.entries.iter().map(|e| &*e.rule.id).collect();
        for rule in &rules {
            rule.validate()?;
            if !seen.insert(rule.id.as_str()) {
                return Err(RuleError::DuplicateId(rule.id.clone()));
            }
        }
        for rule in rules {
            let p = rule.priority.value();
            let at = table
                .entries
                .partition_point(|e| e.rule.priority.value() >= p);
            // Walks hold the read lock: no full walk runs while we count.
            let full_walks = self.full_walks.load(Ordering::Relaxed);
            table
                .tests
                .insert(at, Compiled::new(&rule.condition, &mut table.paths));
            table
                .entries
                .insert(at, Arc::new(Entry::new(rule, full_walks)));
        }
        table.index = RuleIndex::build(&table.tests);
        Ok(())
    }

    /// Removes a rule; its stats and gate go with it.
    pub fn remove(&self, id: &str) -> Option<Rule> {
        let mut table = self.write();
        let at = table.entries.iter().position(|e| &*e.id == id)?;
        table.tests.remove(at);
        table.index = RuleIndex::build(&table.tests);
        Some(table.entries.remove(at).snapshot())
    }

    /// Enables or disables a rule.
    ///
    /// # Errors
    /// [`RuleError::UnknownRule`] if no rule has this id.
    pub fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), RuleError> {
        let table = self.read();
        let entry = table
            .entries
            .iter()
            .find(|e| &*e.id == id)
            .ok_or_else(|| RuleError::UnknownRule(id.to_owned()))?;
        entry.enabled.store(enabled, Ordering::Relaxed);
        Ok(())
    }

    /// A rule by id.
    pub fn get(&self, id: &str) -> Option<Rule> {
        self.read()
            .entries
            .iter()
            .find(|e| &*e.id == id)
            .map(|e| e.snapshot())
    }

    /// Every rule, in evaluation order.
    pub fn rules(&self) -> Vec<Rule> {
        self.read().entries.iter().map(|e| e.snapshot()).collect()
    }

    /// The rules as a [`RuleSet`] named `name` (in evaluation order).
    pub fn to_rule_set(&self, name: impl Into<String>) -> RuleSet {
        RuleSet::new(name, self.rules())
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.read().entries.len()
    }

    /// No rules.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Walks the rules in order against `ctx` at time `now_ms`.
    ///
    /// A match releases its action unless its cooldown or rate limit says
    /// otherwise (the release is recorded at once). A match of a
    /// `stop_on_match` rule ends the walk, released or not.
    pub fn evaluate(&self, ctx: &Value, now_ms: u64) -> Evaluation {
        self.walk(ctx, now_ms, None, false)
    }

    /// As [`RuleEngine::evaluate`], visiting only rules tagged `tag`.
    pub fn evaluate_tagged(&self, ctx: &Value, tag: &str, now_ms: u64) -> Evaluation {
        self.walk(ctx, now_ms, Some(tag), false)
    }

    /// The first matching rule's outcome (later rules are not visited).
    pub fn evaluate_first(&self, ctx: &Value, now_ms: u64) -> Option<RuleOutcome> {
        self.walk(ctx, now_ms, None, true).outcomes.pop()
    }

    fn walk(&self, ctx: &Value, now_ms: u64, tag: Option<&str>, first_only: bool) -> Evaluation {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        // Every rule, or only those tagged `tag`.
        let visit = |rule: &Rule| tag.is_none_or(|tag| rule.tags.iter().any(|t| t == tag));
        let table = self.read();
        // Each path resolved at most once per walk; on the stack for the
        // usual handful of paths.
        let mut on_stack = [None; 32];
        let mut on_heap = Vec::new();
        let cache: &mut [Option<Option<&Value>>] = if table.paths.len() <= on_stack.len() {
            &mut on_stack[..table.paths.len()]
        } else {
            on_heap.resize(table.paths.len(), None);
            &mut on_heap
        };
        // The single-comparison rules that hold, one bit each.
        let mut bits_on_stack = [0u64; STACK_RULES / 64];
        let mut bits_on_heap = Vec::new();
        let words = table.entries.len().div_ceil(64);
        let bits: &mut [u64] = if words <= bits_on_stack.len() {
            &mut bits_on_stack[..words]
        } else {
            bits_on_heap.resize(words, 0);
            &mut bits_on_heap
        };
        table.index.matches(ctx, &table.paths, cache, bits);
        // Visited in priority order: the unindexed rules (tested here) and
        // the indexed ones whose bit is set; the rest cannot match.
        let mut evaluation = Evaluation::default();
        let mut end = table.entries.len();
        'walk: for (w, &held) in bits.iter().enumerate() {
            let mut word = held | table.index.unindexed_word(w);
            while word != 0 {
                let i = w * 64 + word.trailing_zeros() as usize;
                word &= word - 1;
                let entry = &table.entries[i];
                if !visit(&entry.rule) {
                    continue;
                }
                if !table.index.is_indexed(i) && !table.tests[i].eval(ctx, &table.paths, cache) {
                    continue;
                }
                let Some(outcome) = entry.on_match(now_ms) else {
                    continue;
                };
                let stop = first_only || outcome.stop_processing;
                evaluation.outcomes.push(outcome);
                if stop {
                    end = i + 1;
                    break 'walk;
                }
            }
        }
        // Visit counts: one engine-wide increment for an untagged walk over
        // every rule, one per visited rule otherwise.
        if tag.is_none() && end == table.entries.len() {
            evaluation.visited = end;
            self.full_walks.fetch_add(1, Ordering::Relaxed);
        } else {
            for entry in table.entries[..end].iter().filter(|e| visit(&e.rule)) {
                evaluation.visited += 1;
                entry
                    .counters
                    .partial_evaluations
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        evaluation
    }

    /// A rule's counters.
    pub fn stats(&self, id: &str) -> Option<RuleStats> {
        let table = self.read();
        let full_walks = self.full_walks.load(Ordering::Relaxed);
        table
            .entries
            .iter()
            .find(|e| &*e.id == id)
            .map(|e| e.stats(full_walks))
    }

    /// Number of `evaluate*` calls on this engine.
    pub fn evaluations(&self) -> u64 {
        self.evaluations.load(Ordering::Relaxed)
    }
}
