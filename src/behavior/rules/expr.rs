//! Conditions and expressions of the rules engine (COMPUTE.md §4.3).
//!
//! A [`Condition`] is a dot path into a JSON context, an [`Op`] and a
//! JSON operand; an [`Expr`] combines them (Single, And, Or, Not, Always,
//! Never; an empty And is true, an empty Or false).
//!
//! Departs from v0.11 (§8 item 12):
//! - numbers compare as numbers ([`super::value`]);
//! - **a missing field is not null**: only [`Op::Exists`] and
//!   [`Op::NotExists`] look at a field the path does not reach; every other
//!   operator, `Ne` and `NotIn` included, is false on it. A field holding
//!   an explicit `null` is present: `Eq null` is true on it, and `Exists` is
//!   false (Exists means "present and not null");
//! - `In` / `NotIn` against an operand that is not an array, and
//!   `StartsWith` / `EndsWith` / `Matches` against one that is not a string,
//!   are errors when the condition is built or loaded, never a silent
//!   answer;
//! - `Matches` is a real regular expression (the `regex` crate, linear
//!   time), compiled once when the condition is built, with the pattern
//!   and the compiled program bounded in size; an invalid pattern is an
//!   error at build/load time.

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RuleError;
use super::value::{json_eq, json_order};

pub use crate::behavior::pattern::MAX_PATTERN_LEN;
/// Longest field path, in bytes.
pub const MAX_PATH_LEN: usize = 1024;
/// Most segments in a field path.
pub const MAX_PATH_SEGMENTS: usize = 64;
/// Deepest expression tree accepted (a lone Single has depth 1).
pub const MAX_EXPR_DEPTH: usize = 64;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Op {
    /// Equal (numbers numerically, containers member by member).
    Eq,
    /// Not equal (false on a missing field).
    Ne,
    /// Less than (numbers, or strings in byte order).
    Lt,
    /// Less or equal.
    Le,
    /// Greater than.
    Gt,
    /// Greater or equal.
    Ge,
    /// String contains the operand string, or array contains the operand.
    Contains,
    /// String starts with the (string) operand.
    StartsWith,
    /// String ends with the (string) operand.
    EndsWith,
    /// String matches the (string) operand as a regular expression
    /// (unanchored: use `^…$` to match the whole string).
    Matches,
    /// The (array) operand contains the field.
    In,
    /// The (array) operand does not contain the field.
    NotIn,
    /// The field is present and not null (the operand is ignored).
    Exists,
    /// The field is missing or null (the operand is ignored).
    NotExists,
}

/// A dot path: a top-level key, then object keys or decimal array indices.
/// Each segment keeps its index form, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldPath {
    segments: Vec<(String, Option<usize>)>,
}

impl FieldPath {
    fn parse(path: &str) -> Result<Self, RuleError> {
        let bad = |reason: &str| RuleError::InvalidPath {
            path: path.chars().take(128).collect(),
            reason: reason.to_owned(),
        };
        if path.is_empty() {
            return Err(bad("empty"));
        }
        if path.len() > MAX_PATH_LEN {
            return Err(bad("longer than 1024 bytes"));
        }
        let segments: Vec<(String, Option<usize>)> = path
            .split('.')
            .map(|seg| (seg.to_owned(), array_index(seg)))
            .collect();
        if segments.len() > MAX_PATH_SEGMENTS {
            return Err(bad("more than 64 segments"));
        }
        if segments.iter().any(|(seg, _)| seg.is_empty()) {
            return Err(bad("empty segment"));
        }
        Ok(Self { segments })
    }

    /// The value the path reaches, or `None` when it is missing.
    fn resolve<'a>(&self, ctx: &'a Value) -> Option<&'a Value> {
        let mut at = ctx;
        for (key, index) in &self.segments {
            at = match at {
                Value::Object(map) => map.get(key.as_str())?,
                Value::Array(items) => items.get((*index)?)?,
                _ => return None,
            };
        }
        Some(at)
    }
}

/// A decimal array index: digits only (no sign, no `+`, no spaces).
fn array_index(seg: &str) -> Option<usize> {
    if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
        seg.parse().ok()
    } else {
        None
    }
}

/// The JSON form of a condition (what `Condition` serializes to).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionRepr {
    field: String,
    op: Op,
    #[serde(default)]
    value: Value,
}

/// One comparison: `field op value`. Built with [`Condition::new`], which
/// validates the path and the operand (and compiles a `Matches` pattern).
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "ConditionRepr", into = "ConditionRepr")]
pub struct Condition {
    field: String,
    path: FieldPath,
    op: Op,
    value: Value,
    regex: Option<Regex>,
}

impl Condition {
    /// A condition on `field` (a dot path).
    ///
    /// # Errors
    /// [`RuleError::InvalidPath`] for an empty or oversized path or an empty
    /// segment; [`RuleError::OperandType`] when the operand has the wrong
    /// JSON type for the operator (`In`/`NotIn` need an array,
    /// `StartsWith`/`EndsWith`/`Matches` a string);
    /// [`RuleError::InvalidRegex`] for a pattern that does not compile or
    /// exceeds the size bounds.
    pub fn new(field: impl Into<String>, op: Op, value: Value) -> Result<Self, RuleError> {
        let field = field.into();
        let path = FieldPath::parse(&field)?;
        let wrong = |expected: &'static str| RuleError::OperandType { op, expected };
        let mut regex = None;
        match op {
            Op::In | Op::NotIn if !value.is_array() => return Err(wrong("an array")),
            Op::StartsWith | Op::EndsWith if !value.is_string() => {
                return Err(wrong("a string"));
            }
            Op::Matches => {
                let Value::String(pattern) = &value else {
                    return Err(wrong("a string"));
                };
                regex = Some(compile_pattern(pattern)?);
            }
            _ => {}
        }
        Ok(Self {
            field,
            path,
            op,
            value,
            regex,
        })
    }

    /// The dot path.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The operator.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The operand.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Whether the condition holds on `ctx`.
    pub fn eval(&self, ctx: &Value) -> bool {
        self.eval_on(self.path.resolve(ctx))
    }

    /// The value the field path names in `ctx` (None: missing).
    pub(crate) fn resolve<'a>(&self, ctx: &'a Value) -> Option<&'a Value> {
        self.path.resolve(ctx)
    }

    /// Whether the condition holds on `left`, the field's value already
    /// resolved (None: missing).
    pub(crate) fn eval_on(&self, left: Option<&Value>) -> bool {
        let Some(left) = left else {
            return self.op == Op::NotExists;
        };
        let right = &self.value;
        match self.op {
            Op::Eq => json_eq(left, right),
            Op::Ne => !json_eq(left, right),
            Op::Lt => json_order(left, right).is_some_and(|o| o.is_lt()),
            Op::Le => json_order(left, right).is_some_and(|o| o.is_le()),
            Op::Gt => json_order(left, right).is_some_and(|o| o.is_gt()),
            Op::Ge => json_order(left, right).is_some_and(|o| o.is_ge()),
            Op::Contains => match (left, right) {
                (Value::String(s), Value::String(sub)) => s.contains(sub.as_str()),
                (Value::Array(items), _) => items.iter().any(|v| json_eq(v, right)),
                _ => false,
            },
            Op::StartsWith => both_str(left, right, |s, p| s.starts_with(p)),
            Op::EndsWith => both_str(left, right, |s, p| s.ends_with(p)),
            Op::Matches => match (left, &self.regex) {
                (Value::String(s), Some(re)) => re.is_match(s),
                _ => false,
            },
            Op::In => in_array(left, right),
            Op::NotIn => right.is_array() && !in_array(left, right),
            Op::Exists => !left.is_null(),
            Op::NotExists => left.is_null(),
        }
    }
}

fn both_str(left: &Value, right: &Value, f: impl Fn(&str, &str) -> bool) -> bool {
    match (left, right) {
        (Value::String(s), Value::String(p)) => f(s, p),
        _ => false,
    }
}

fn in_array(left: &Value, right: &Value) -> bool {
    right
        .as_array()
        .is_some_and(|items| items.iter().any(|v| json_eq(v, left)))
}

/// Compiles a `Matches` pattern within the size bounds.
fn compile_pattern(pattern: &str) -> Result<Regex, RuleError> {
    crate::behavior::pattern::compile(pattern).map_err(|reason| RuleError::InvalidRegex {
        pattern: crate::behavior::pattern::excerpt(pattern),
        reason,
    })
}

impl TryFrom<ConditionRepr> for Condition {
    type Error = RuleError;
    fn try_from(r: ConditionRepr) -> Result<Self, RuleError> {
        Self::new(r.field, r.op, r.value)
    }
}

impl From<Condition> for ConditionRepr {
    fn from(c: Condition) -> Self {
        Self {
            field: c.field,
            op: c.op,
            value: c.value,
        }
    }
}

impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        // The path and the regex derive from these three.
        self.field == other.field && self.op == other.op && self.value == other.value
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?} {}", self.field, self.op, self.value)
    }
}

/// A boolean expression over conditions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Expr {
    /// One condition.
    Single(Condition),
    /// All hold (empty: true).
    And(Vec<Expr>),
    /// Any holds (empty: false).
    Or(Vec<Expr>),
    /// The inner expression does not hold.
    Not(Box<Expr>),
    /// Always true.
    Always,
    /// Always false.
    Never,
}

impl Expr {
    /// `Single(Condition::new(field, op, value)?)`.
    ///
    /// # Errors
    /// As [`Condition::new`].
    pub fn cond(field: impl Into<String>, op: Op, value: Value) -> Result<Self, RuleError> {
        Condition::new(field, op, value).map(Self::Single)
    }

    /// `Not(e)`.
    #[allow(clippy::should_implement_trait)]
    pub fn not(e: Expr) -> Self {
        Self::Not(Box::new(e))
    }

    /// Whether the expression holds on `ctx`.
    pub fn eval(&self, ctx: &Value) -> bool {
        match self {
            Self::Single(c) => c.eval(ctx),
            Self::And(all) => all.iter().all(|e| e.eval(ctx)),
            Self::Or(any) => any.iter().any(|e| e.eval(ctx)),
            Self::Not(e) => !e.eval(ctx),
            Self::Always => true,
            Self::Never => false,
        }
    }

    /// Depth of the tree (a leaf is 1).
    pub fn depth(&self) -> usize {
        match self {
            Self::And(es) | Self::Or(es) => 1 + es.iter().map(Expr::depth).max().unwrap_or(0),
            Self::Not(e) => 1 + e.depth(),
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn holds(field: &str, op: Op, value: Value, ctx: &Value) -> bool {
        Condition::new(field, op, value).unwrap().eval(ctx)
    }

    fn ctx() -> Value {
        json!({
            "user": {"name": "alice", "age": 30, "roles": ["admin", "ops"], "score": 2.5},
            "items": [{"id": 7}, {"id": 9}],
            "big": u64::MAX,
            "neg": -5,
            "nothing": null,
            "msg": "error: disk full on /dev/sda1",
        })
    }

    #[test]
    fn every_operator() {
        let c = ctx();
        assert!(holds("user.name", Op::Eq, json!("alice"), &c));
        assert!(!holds("user.name", Op::Eq, json!("bob"), &c));
        assert!(holds("user.name", Op::Ne, json!("bob"), &c));
        assert!(!holds("user.name", Op::Ne, json!("alice"), &c));
        assert!(holds("user.age", Op::Lt, json!(31), &c));
        assert!(!holds("user.age", Op::Lt, json!(30), &c));
        assert!(holds("user.age", Op::Le, json!(30), &c));
        assert!(holds("user.age", Op::Gt, json!(29.5), &c));
        assert!(holds("user.age", Op::Ge, json!(30.0), &c));
        assert!(!holds("user.age", Op::Ge, json!(30.5), &c));
        assert!(holds("user.name", Op::Lt, json!("bob"), &c));
        assert!(!holds("user.name", Op::Lt, json!(5), &c));
        assert!(holds("msg", Op::Contains, json!("disk"), &c));
        assert!(!holds("msg", Op::Contains, json!("cpu"), &c));
        assert!(holds("user.roles", Op::Contains, json!("ops"), &c));
        assert!(!holds("user.roles", Op::Contains, json!("dev"), &c));
        assert!(!holds("user.age", Op::Contains, json!(3), &c));
        assert!(holds("msg", Op::StartsWith, json!("error:"), &c));
        assert!(!holds("msg", Op::StartsWith, json!("disk"), &c));
        assert!(holds("msg", Op::EndsWith, json!("sda1"), &c));
        assert!(!holds("user.age", Op::EndsWith, json!("0"), &c));
        assert!(holds(
            "msg",
            Op::Matches,
            json!(r"^error: .* /dev/sd[a-z]\d$"),
            &c
        ));
        assert!(!holds("msg", Op::Matches, json!(r"^warn"), &c));
        // A regex, not a substring: "a.c" is not found literally in "abc".
        assert!(holds("x", Op::Matches, json!("a.c"), &json!({"x": "abc"})));
        assert!(holds("user.name", Op::In, json!(["bob", "alice"]), &c));
        assert!(!holds("user.name", Op::In, json!(["bob"]), &c));
        assert!(holds("user.age", Op::In, json!([30.0]), &c));
        assert!(holds("user.name", Op::NotIn, json!(["bob"]), &c));
        assert!(!holds("user.name", Op::NotIn, json!(["alice"]), &c));
        assert!(holds("user", Op::Exists, Value::Null, &c));
        assert!(!holds("nothing", Op::Exists, Value::Null, &c));
        assert!(holds("nothing", Op::NotExists, Value::Null, &c));
        assert!(!holds("user.name", Op::NotExists, Value::Null, &c));
    }

    #[test]
    fn missing_field_is_not_null() {
        let c = ctx();
        for op in [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Contains] {
            assert!(!holds("user.missing", op, json!(null), &c), "{op:?}");
            assert!(!holds("user.missing", op, json!(1), &c), "{op:?}");
        }
        assert!(!holds("user.missing", Op::NotIn, json!([1]), &c));
        assert!(!holds("user.missing", Op::In, json!([null]), &c));
        assert!(!holds("user.missing", Op::Exists, json!(null), &c));
        assert!(holds("user.missing", Op::NotExists, json!(null), &c));
        // Explicit null is present: Eq null holds, Ne null does not.
        assert!(holds("nothing", Op::Eq, json!(null), &c));
        assert!(!holds("nothing", Op::Ne, json!(null), &c));
    }

    #[test]
    fn large_u64_and_mixed_sign() {
        let c = ctx();
        assert!(holds("big", Op::Eq, json!(u64::MAX), &c));
        assert!(!holds("big", Op::Eq, json!(u64::MAX - 1), &c));
        assert!(holds("big", Op::Gt, json!(u64::MAX - 1), &c));
        assert!(holds("big", Op::Gt, json!(i64::MAX), &c));
        assert!(holds("neg", Op::Lt, json!(0u64), &c));
        assert!(holds("neg", Op::Lt, json!(u64::MAX), &c));
        assert!(holds("neg", Op::Gt, json!(i64::MIN), &c));
        assert!(holds("neg", Op::Eq, json!(-5.0), &c));
        let p53 = json!({"v": (1u64 << 53) + 1});
        assert!(!holds("v", Op::Eq, json!((1u64 << 53) as f64), &p53));
        assert!(holds("v", Op::Gt, json!((1u64 << 53) as f64), &p53));
    }

    #[test]
    fn float_fallback() {
        let c = ctx();
        assert!(holds("user.score", Op::Gt, json!(2.4), &c));
        assert!(holds("user.score", Op::Lt, json!(2.6), &c));
        assert!(holds("user.score", Op::Eq, json!(2.5), &c));
        assert!(holds("user.score", Op::Gt, json!(2), &c));
        assert!(holds("user.score", Op::Lt, json!(3u64), &c));
        assert!(holds("x", Op::Eq, json!(1), &json!({"x": 1.0})));
    }

    #[test]
    fn nested_paths_and_array_indices() {
        let c = ctx();
        assert!(holds("items.1.id", Op::Eq, json!(9), &c));
        assert!(holds("items.0.id", Op::Eq, json!(7), &c));
        assert!(!holds("items.2.id", Op::Exists, json!(null), &c));
        assert!(holds("user.roles.0", Op::Eq, json!("admin"), &c));
        // Not a decimal index.
        assert!(!holds("items.+1.id", Op::Exists, json!(null), &c));
        assert!(!holds("items.x", Op::Exists, json!(null), &c));
        // Through a scalar.
        assert!(!holds("user.name.first", Op::Exists, json!(null), &c));
        // Object keys that look like numbers are still keys.
        assert!(holds("m.0", Op::Eq, json!(1), &json!({"m": {"0": 1}})));
    }

    #[test]
    fn bad_conditions_are_load_errors() {
        assert!(matches!(
            Condition::new("x", Op::NotIn, json!("abc")),
            Err(RuleError::OperandType { op: Op::NotIn, .. })
        ));
        assert!(matches!(
            Condition::new("x", Op::In, json!(5)),
            Err(RuleError::OperandType { .. })
        ));
        assert!(matches!(
            Condition::new("x", Op::StartsWith, json!(5)),
            Err(RuleError::OperandType { .. })
        ));
        assert!(matches!(
            Condition::new("x", Op::Matches, json!("(unclosed")),
            Err(RuleError::InvalidRegex { .. })
        ));
        assert!(matches!(
            Condition::new("x", Op::Matches, json!("a".repeat(MAX_PATTERN_LEN + 1))),
            Err(RuleError::InvalidRegex { .. })
        ));
        // A pattern whose compiled program exceeds the bound.
        assert!(matches!(
            Condition::new("x", Op::Matches, json!(r"\w{1000}\w{1000}\w{1000}")),
            Err(RuleError::InvalidRegex { .. })
        ));
        for bad in ["", "a..b", ".a", "a."] {
            assert!(matches!(
                Condition::new(bad, Op::Eq, json!(1)),
                Err(RuleError::InvalidPath { .. })
            ));
        }
    }

    #[test]
    fn expressions_combine() {
        let c = ctx();
        let t = Expr::cond("user.age", Op::Eq, json!(30)).unwrap();
        let f = Expr::cond("user.age", Op::Eq, json!(31)).unwrap();
        assert!(Expr::And(vec![]).eval(&c));
        assert!(!Expr::Or(vec![]).eval(&c));
        assert!(Expr::And(vec![t.clone(), Expr::Always]).eval(&c));
        assert!(!Expr::And(vec![t.clone(), f.clone()]).eval(&c));
        assert!(Expr::Or(vec![f.clone(), t.clone()]).eval(&c));
        assert!(Expr::not(f.clone()).eval(&c));
        assert!(!Expr::Never.eval(&c));
        assert_eq!(Expr::not(Expr::And(vec![t, f])).depth(), 3);
    }
}
