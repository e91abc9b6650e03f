//! The poll filter: a small JSON predicate language over JSON event
//! payloads. Integers compare exactly (i64 and u64 alike, never through
//! f64); a float compares exactly against an integer too.
//!
//! ```json
//! {"and": [
//!   {"field": "user.id", "op": "eq", "value": 18446744073709551615},
//!   {"or": [{"field": "kind", "op": "in", "value": ["a", "b"]},
//!           {"not": {"field": "score", "op": "lt", "value": -3}}]},
//!   {"field": "name", "op": "contains", "value": "net"},
//!   {"field": "tag", "op": "exists"}
//! ]}
//! ```
//!
//! Operators: `eq`, `ne`, `gt`, `gte`, `lt`, `lte` (numbers with numbers,
//! strings with strings), `in` (a list of values), `contains` (substring
//! of a string, or element of an array), `exists`. A payload that is not
//! JSON matches nothing.

use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::error::{BusError, Result};

/// A parsed predicate.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Filter {
    /// All must match.
    And(Vec<Filter>),
    /// At least one must match.
    Or(Vec<Filter>),
    /// Must not match.
    Not(Box<Filter>),
    /// A comparison of one field.
    Compare {
        /// Dotted path into the payload object.
        path: Vec<String>,
        /// The operator.
        op: Op,
        /// The operand (absent for `exists`).
        value: Value,
    },
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Greater than.
    Gt,
    /// Greater or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less or equal.
    Lte,
    /// Equal to one of a list.
    In,
    /// Substring or array element.
    Contains,
    /// The field is present.
    Exists,
}

/// Nesting limit of a filter.
const MAX_DEPTH: usize = 32;

impl Filter {
    /// Parses a filter from its JSON form.
    ///
    /// # Errors
    /// [`BusError::InvalidRequest`] naming the problem.
    pub fn parse(json: &Value) -> Result<Self> {
        Self::parse_at(json, 0)
    }

    fn parse_at(json: &Value, depth: usize) -> Result<Self> {
        let bad = |why: String| BusError::InvalidRequest(format!("filter: {why}"));
        if depth > MAX_DEPTH {
            return Err(bad(format!("nested deeper than {MAX_DEPTH}")));
        }
        let obj = json
            .as_object()
            .ok_or_else(|| bad(format!("expected an object, got {json}")))?;
        let list = |v: &Value| -> Result<Vec<Filter>> {
            v.as_array()
                .ok_or_else(|| bad("and/or take an array".into()))?
                .iter()
                .map(|f| Self::parse_at(f, depth + 1))
                .collect()
        };
        if obj.len() == 1 {
            if let Some(v) = obj.get("and") {
                return Ok(Self::And(list(v)?));
            }
            if let Some(v) = obj.get("or") {
                return Ok(Self::Or(list(v)?));
            }
            if let Some(v) = obj.get("not") {
                return Ok(Self::Not(Box::new(Self::parse_at(v, depth + 1)?)));
            }
        }
        for key in obj.keys() {
            if !matches!(key.as_str(), "field" | "op" | "value") {
                return Err(bad(format!("unknown key {key:?}")));
            }
        }
        let field = obj
            .get("field")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("a comparison needs a string \"field\"".into()))?;
        if field.is_empty() {
            return Err(bad("empty field path".into()));
        }
        let op = match obj.get("op").and_then(Value::as_str) {
            Some("eq") => Op::Eq,
            Some("ne") => Op::Ne,
            Some("gt") => Op::Gt,
            Some("gte") => Op::Gte,
            Some("lt") => Op::Lt,
            Some("lte") => Op::Lte,
            Some("in") => Op::In,
            Some("contains") => Op::Contains,
            Some("exists") => Op::Exists,
            other => return Err(bad(format!("unknown op {other:?}"))),
        };
        let value = obj.get("value").cloned().unwrap_or(Value::Null);
        if op != Op::Exists && !obj.contains_key("value") {
            return Err(bad(format!("op {op:?} needs a \"value\"")));
        }
        if op == Op::In && !value.is_array() {
            return Err(bad("op in needs an array value".into()));
        }
        Ok(Self::Compare {
            path: field.split('.').map(str::to_owned).collect(),
            op,
            value,
        })
    }

    /// Whether the JSON `payload` matches.
    pub fn matches_payload(&self, payload: &[u8]) -> bool {
        serde_json::from_slice::<Value>(payload).is_ok_and(|v| self.matches(&v))
    }

    /// Whether the parsed document matches.
    pub fn matches(&self, doc: &Value) -> bool {
        match self {
            Self::And(fs) => fs.iter().all(|f| f.matches(doc)),
            Self::Or(fs) => fs.iter().any(|f| f.matches(doc)),
            Self::Not(f) => !f.matches(doc),
            Self::Compare { path, op, value } => {
                let mut at = doc;
                for key in path {
                    match at.get(key) {
                        Some(v) => at = v,
                        None => return false,
                    }
                }
                compare(at, *op, value)
            }
        }
    }
}

fn compare(field: &Value, op: Op, operand: &Value) -> bool {
    match op {
        Op::Exists => true,
        Op::Eq => equal(field, operand),
        Op::Ne => !equal(field, operand),
        Op::In => operand
            .as_array()
            .is_some_and(|list| list.iter().any(|v| equal(field, v))),
        Op::Contains => match (field, operand) {
            (Value::String(s), Value::String(needle)) => s.contains(needle.as_str()),
            (Value::Array(items), v) => items.iter().any(|i| equal(i, v)),
            _ => false,
        },
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
            let Some(ord) = order(field, operand) else {
                return false;
            };
            match op {
                Op::Gt => ord == Ordering::Greater,
                Op::Gte => ord != Ordering::Less,
                Op::Lt => ord == Ordering::Less,
                _ => ord != Ordering::Greater,
            }
        }
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => cmp_numbers(x, y) == Some(Ordering::Equal),
        _ => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => cmp_numbers(x, y),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// An exact number: integers as i128 (every i64 and u64), others as f64.
enum Exact {
    Int(i128),
    Float(f64),
}

fn exact(n: &Number) -> Exact {
    if let Some(u) = n.as_u64() {
        Exact::Int(i128::from(u))
    } else if let Some(i) = n.as_i64() {
        Exact::Int(i128::from(i))
    } else {
        Exact::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Exact comparison; None for NaN.
pub(crate) fn cmp_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    match (exact(a), exact(b)) {
        (Exact::Int(x), Exact::Int(y)) => Some(x.cmp(&y)),
        (Exact::Float(x), Exact::Float(y)) => x.partial_cmp(&y),
        (Exact::Int(x), Exact::Float(y)) => cmp_int_float(x, y),
        (Exact::Float(x), Exact::Int(y)) => cmp_int_float(y, x).map(Ordering::reverse),
    }
}

/// `i` against `f` without rounding `i` to a float.
fn cmp_int_float(i: i128, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    // 2^127 is exactly representable; every i128 lies below it.
    const LIMIT: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;
    if f >= LIMIT {
        return Some(Ordering::Less);
    }
    if f < -LIMIT {
        return Some(Ordering::Greater);
    }
    let floor = f.floor();
    // |floor| < 2^127, so the cast is exact.
    let whole = floor as i128;
    match i.cmp(&whole) {
        Ordering::Equal if f > floor => Some(Ordering::Less),
        ord => Some(ord),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(v: Value) -> Filter {
        Filter::parse(&v).unwrap()
    }

    #[test]
    fn u64_and_i64_compare_exactly() {
        let doc = json!({"id": u64::MAX, "neg": i64::MIN, "near": 9_007_199_254_740_993u64});
        assert!(f(json!({"field":"id","op":"eq","value": u64::MAX})).matches(&doc));
        assert!(!f(json!({"field":"id","op":"eq","value": u64::MAX - 1})).matches(&doc));
        assert!(f(json!({"field":"id","op":"gt","value": u64::MAX - 1})).matches(&doc));
        assert!(f(json!({"field":"neg","op":"lt","value": i64::MIN + 1})).matches(&doc));
        // 2^53 + 1 is not an f64: through f64 it would equal 2^53.
        assert!(
            !f(json!({"field":"near","op":"eq","value": 9_007_199_254_740_992u64})).matches(&doc)
        );
        assert!(
            f(json!({"field":"near","op":"gt","value": 9_007_199_254_740_992u64})).matches(&doc)
        );
        // Integers against floats, exactly.
        assert!(
            f(json!({"field":"near","op":"gt","value": 9_007_199_254_740_992.0})).matches(&doc)
        );
        assert!(f(json!({"field":"id","op":"lt","value": 1.9e19})).matches(&doc));
        assert!(
            f(json!({"field":"neg","op":"gt","value": -9.3e18}))
                .matches(&json!({"neg": -9_200_000_000_000_000_000i64}))
        );
        assert!(f(json!({"field":"x","op":"lt","value": 2.5})).matches(&json!({"x": 2})));
        assert!(!f(json!({"field":"x","op":"eq","value": 2.5})).matches(&json!({"x": 2})));
        assert!(f(json!({"field":"x","op":"eq","value": 2.0})).matches(&json!({"x": 2})));
    }

    #[test]
    fn combinators_paths_and_operators() {
        let doc = json!({"user": {"name": "netmesh", "tags": ["a", "b"]}, "kind": "b", "n": 5});
        let filter = f(json!({"and": [
            {"field": "user.name", "op": "contains", "value": "mesh"},
            {"field": "user.tags", "op": "contains", "value": "a"},
            {"or": [{"field": "kind", "op": "in", "value": ["x", "b"]}, {"field": "n", "op": "gt", "value": 100}]},
            {"not": {"field": "missing", "op": "exists"}},
            {"field": "n", "op": "lte", "value": 5},
            {"field": "kind", "op": "ne", "value": "a"}
        ]}));
        assert!(filter.matches(&doc));
        assert!(!filter.matches(&json!({"user": {"name": "x"}})));
        assert!(filter.matches_payload(doc.to_string().as_bytes()));
        assert!(!filter.matches_payload(b"not json"));
    }

    #[test]
    fn bad_filters_are_typed_errors() {
        for bad in [
            json!([]),
            json!({"field": "a", "op": "like", "value": 1}),
            json!({"field": "a", "op": "eq"}),
            json!({"field": "a", "op": "in", "value": 1}),
            json!({"field": "", "op": "exists"}),
            json!({"and": 3}),
            json!({"field": "a", "op": "eq", "value": 1, "extra": 2}),
        ] {
            assert!(
                matches!(Filter::parse(&bad), Err(BusError::InvalidRequest(_))),
                "{bad}"
            );
        }
        let mut deep = json!({"field": "a", "op": "exists"});
        for _ in 0..40 {
            deep = json!({ "not": deep });
        }
        assert!(Filter::parse(&deep).is_err());
    }
}
