//! Rule conditions in the form the engine walks.
//!
//! Each field path is interned once per table (a walk resolves each
//! distinct path once however many rules test it), and the common tests —
//! a comparison with a number or a string, membership in a list of strings
//! — keep their operand pre-read next to the operator, in one contiguous
//! list per table: walking a hundred rules reads a few kilobytes, not a
//! hundred scattered rules. Everything else defers to
//! [`Condition::eval_on`], which defines the semantics all tests share.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::Value;

use super::expr::{Condition, Expr, Op};
use super::value::{Num, compare_nums, num};

/// A rule's condition, its field paths replaced by slots.
pub(super) enum Compiled {
    Leaf(u32, Test),
    And(Vec<Compiled>),
    Or(Vec<Compiled>),
    Not(Box<Compiled>),
    Always,
    Never,
}

/// One condition on a resolved field.
pub(super) enum Test {
    /// `Eq`, `Ne`, `Lt`, `Le`, `Gt` or `Ge` against a number.
    Number(Op, Num),
    /// The same operators against a string.
    Text(Op, Box<str>),
    /// `In` (or `NotIn`, `negate`) over a list of strings only.
    TextSet {
        negate: bool,
        items: Box<[Box<str>]>,
    },
    /// Any other condition, as written.
    General(Box<Condition>),
}

impl Compiled {
    pub(super) fn new(expr: &Expr, paths: &mut Paths) -> Self {
        match expr {
            Expr::Single(c) => Self::Leaf(paths.slot(c), Test::new(c)),
            Expr::And(all) => Self::And(all.iter().map(|e| Self::new(e, paths)).collect()),
            Expr::Or(any) => Self::Or(any.iter().map(|e| Self::new(e, paths)).collect()),
            Expr::Not(e) => Self::Not(Box::new(Self::new(e, paths))),
            Expr::Always => Self::Always,
            Expr::Never => Self::Never,
        }
    }

    pub(super) fn eval<'a>(
        &self,
        ctx: &'a Value,
        paths: &Paths,
        cache: &mut [Option<Option<&'a Value>>],
    ) -> bool {
        match self {
            Self::Leaf(slot, test) => test.eval(resolve(*slot, ctx, paths, cache)),
            Self::And(all) => all.iter().all(|e| e.eval(ctx, paths, cache)),
            Self::Or(any) => any.iter().any(|e| e.eval(ctx, paths, cache)),
            Self::Not(e) => !e.eval(ctx, paths, cache),
            Self::Always => true,
            Self::Never => false,
        }
    }
}

/// The field at `slot`, resolved on `ctx` once per walk.
pub(super) fn resolve<'a>(
    slot: u32,
    ctx: &'a Value,
    paths: &Paths,
    cache: &mut [Option<Option<&'a Value>>],
) -> Option<&'a Value> {
    let slot = slot as usize;
    match cache[slot] {
        Some(resolved) => resolved,
        None => {
            let resolved = paths.list[slot].resolve(ctx);
            cache[slot] = Some(resolved);
            resolved
        }
    }
}

impl Test {
    fn new(c: &Condition) -> Self {
        let comparison = matches!(c.op(), Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge);
        match (c.op(), c.value()) {
            (op, Value::Number(n)) if comparison => Self::Number(op, num(n)),
            (op, Value::String(s)) if comparison => Self::Text(op, s.as_str().into()),
            (op @ (Op::In | Op::NotIn), Value::Array(items))
                if items.iter().all(Value::is_string) =>
            {
                Self::TextSet {
                    negate: op == Op::NotIn,
                    items: items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(Box::from)
                        .collect(),
                }
            }
            _ => Self::General(Box::new(c.clone())),
        }
    }

    /// As [`Condition::eval_on`] (the tests in `rules/tests.rs` hold the
    /// two to the same answers).
    fn eval(&self, left: Option<&Value>) -> bool {
        match self {
            Self::General(c) => c.eval_on(left),
            // Missing fields: only NotExists holds, which these never are.
            _ if left.is_none() => false,
            Self::Number(op, right) => {
                let order = match left {
                    Some(Value::Number(n)) => compare_nums(num(n), *right),
                    // Another type: not equal, not ordered.
                    _ => None,
                };
                holds(*op, order)
            }
            Self::Text(op, right) => {
                let order = match left {
                    Some(Value::String(s)) => Some(s.as_bytes().cmp(right.as_bytes())),
                    _ => None,
                };
                holds(*op, order)
            }
            Self::TextSet { negate, items } => {
                let found = match left {
                    Some(Value::String(s)) => items.iter().any(|i| **i == **s),
                    _ => false,
                };
                found != *negate
            }
        }
    }
}

/// Whether a comparison operator holds for `order` (None: unequal and
/// unordered).
fn holds(op: Op, order: Option<Ordering>) -> bool {
    match op {
        Op::Eq => order == Some(Ordering::Equal),
        Op::Ne => order != Some(Ordering::Equal),
        Op::Lt => order.is_some_and(Ordering::is_lt),
        Op::Le => order.is_some_and(Ordering::is_le),
        Op::Gt => order.is_some_and(Ordering::is_gt),
        Op::Ge => order.is_some_and(Ordering::is_ge),
        _ => false,
    }
}

/// The distinct field paths of the rules ever added (a condition per path
/// resolves it).
#[derive(Default)]
pub(super) struct Paths {
    pub(super) list: Vec<Condition>,
    slots: HashMap<String, u32>,
}

impl Paths {
    fn slot(&mut self, c: &Condition) -> u32 {
        if let Some(&slot) = self.slots.get(c.field()) {
            return slot;
        }
        let slot = self.list.len() as u32;
        self.list.push(c.clone());
        self.slots.insert(c.field().to_owned(), slot);
        slot
    }

    pub(super) fn len(&self) -> usize {
        self.list.len()
    }
}

/// Values and operators the rule tests share (`index.rs`, `tests.rs`).
#[cfg(test)]
pub(super) mod samples {
    use serde_json::{Value, json};

    use super::Op;

    /// Numbers at the edges of exact comparison: both kinds equal (1 and
    /// 1.0), the integer limits, and integers past 2^53 next to a float.
    pub(in crate::behavior::rules) fn edge_numbers() -> Vec<Value> {
        vec![
            json!(0),
            json!(1),
            json!(1.0),
            json!(1.5),
            json!(-3),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(9_007_199_254_740_993u64),
            json!(9_007_199_254_740_992.0),
        ]
    }

    /// The comparison and membership operators.
    pub(in crate::behavior::rules) const COMPARISONS: [Op; 8] = [
        Op::Eq,
        Op::Ne,
        Op::Lt,
        Op::Le,
        Op::Gt,
        Op::Ge,
        Op::In,
        Op::NotIn,
    ];
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::samples::{COMPARISONS, edge_numbers};
    use super::*;

    /// The pre-read tests answer as the condition itself does, for every
    /// operator, on every kind of field value (and a missing field).
    #[test]
    fn fast_tests_agree_with_the_condition() {
        let values: Vec<Value> = edge_numbers()
            .into_iter()
            .chain([
                json!("a"),
                json!("b"),
                json!(""),
                json!("mars"),
                json!(null),
                json!(true),
                json!([1, "a"]),
                json!(["mars", "venus"]),
                json!({"k": 1}),
            ])
            .collect();
        let operands = [
            json!(1),
            json!(1.0),
            json!(-3.5),
            json!(u64::MAX),
            json!(9_007_199_254_740_992u64),
            json!("a"),
            json!("mars"),
            json!(["mars", "venus"]),
            json!([]),
            json!([1, "a"]),
        ];
        let ops = COMPARISONS
            .into_iter()
            .chain([Op::Contains, Op::Exists, Op::NotExists]);
        let mut fast = 0;
        for op in ops {
            for operand in &operands {
                let Ok(c) = Condition::new("f", op, operand.clone()) else {
                    continue; // an operand the operator refuses
                };
                let test = Test::new(&c);
                if !matches!(test, Test::General(_)) {
                    fast += 1;
                }
                for left in values.iter().map(Some).chain([None]) {
                    assert_eq!(
                        test.eval(left),
                        c.eval_on(left),
                        "{op:?} {operand} on {left:?}"
                    );
                }
            }
        }
        assert!(fast >= 40, "{fast} conditions took the pre-read form");
    }
}
