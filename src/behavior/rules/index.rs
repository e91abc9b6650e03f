//! Rules whose whole condition is one comparison of a field with a
//! constant, grouped by field and operator and sorted by the constant, so
//! a walk finds every match in a group with one binary search instead of
//! testing each rule.
//!
//! Indexed: `Eq`, `Lt`, `Le`, `Gt`, `Ge` against a number or a string,
//! and `In` a list of strings. The answers are [`Test::eval`]'s: numbers
//! compare as numbers (`compare_nums`, a total order on JSON numbers),
//! strings by bytes, a field of another type or a missing one matches
//! none of these (the test below holds every bit to its rule's own test;
//! the engine's model tests in `rules/tests.rs` run through the index).
//! The walk still takes rules in priority order, but only the unindexed
//! ones and the indexed ones whose bit is set.

use std::cmp::Ordering;

use serde_json::Value;

use super::compiled::{Compiled, Paths, Test, resolve};
use super::expr::Op;
use super::value::{Num, compare_nums, num};

/// The index of one table (rebuilt when rules are added or removed).
#[derive(Default)]
pub(super) struct RuleIndex {
    groups: Vec<Group>,
    /// Whether each rule (by position) is answered by a group.
    indexed: Vec<bool>,
    /// The rules that are not, one bit each.
    unindexed: Vec<u64>,
}

/// Rules testing one field with one operator, by ascending constant.
struct Group {
    slot: u32,
    op: Op,
    keys: Keys,
}

enum Keys {
    Number(Vec<(Num, u32)>),
    /// For `In`, one entry per list item.
    Text(Vec<(Box<str>, u32)>),
}

/// How many rules' match bits fit on the stack.
pub(super) const STACK_RULES: usize = 256;

impl RuleIndex {
    pub(super) fn build(tests: &[Compiled]) -> Self {
        let mut index = Self {
            groups: Vec::new(),
            indexed: vec![false; tests.len()],
            unindexed: vec![0; tests.len().div_ceil(64)],
        };
        for (rule, test) in tests.iter().enumerate() {
            let Compiled::Leaf(slot, test) = test else {
                continue;
            };
            let rule_u32 = rule as u32;
            let (op, number, texts): (Op, Option<Num>, Vec<&str>) = match test {
                Test::Number(op @ (Op::Eq | Op::Lt | Op::Le | Op::Gt | Op::Ge), n) => {
                    (*op, Some(*n), Vec::new())
                }
                Test::Text(op @ (Op::Eq | Op::Lt | Op::Le | Op::Gt | Op::Ge), s) => {
                    (*op, None, vec![&**s])
                }
                Test::TextSet {
                    negate: false,
                    items,
                } => (Op::In, None, items.iter().map(|i| &**i).collect()),
                _ => continue,
            };
            let is_number = number.is_some();
            let group = match index.groups.iter_mut().position(|g| {
                g.slot == *slot && g.op == op && matches!(g.keys, Keys::Number(_)) == is_number
            }) {
                Some(at) => &mut index.groups[at],
                None => {
                    index.groups.push(Group {
                        slot: *slot,
                        op,
                        keys: if is_number {
                            Keys::Number(Vec::new())
                        } else {
                            Keys::Text(Vec::new())
                        },
                    });
                    index.groups.last_mut().expect("just pushed")
                }
            };
            match (&mut group.keys, number) {
                (Keys::Number(keys), Some(n)) => keys.push((n, rule_u32)),
                (Keys::Text(keys), None) => {
                    keys.extend(texts.into_iter().map(|t| (Box::from(t), rule_u32)));
                }
                _ => unreachable!("groups hold one kind"),
            }
            index.indexed[rule] = true;
        }
        for (rule, _) in index.indexed.iter().enumerate().filter(|(_, i)| !**i) {
            index.unindexed[rule / 64] |= 1 << (rule % 64);
        }
        for group in &mut index.groups {
            match &mut group.keys {
                Keys::Number(keys) => keys.sort_by(|a, b| num_order(a.0, b.0)),
                Keys::Text(keys) => keys.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes())),
            }
        }
        index
    }

    /// Word `w` of the unindexed rules' bits.
    pub(super) fn unindexed_word(&self, w: usize) -> u64 {
        self.unindexed.get(w).copied().unwrap_or(0)
    }

    pub(super) fn is_indexed(&self, rule: usize) -> bool {
        self.indexed.get(rule).copied().unwrap_or(false)
    }

    /// Sets the bit of every indexed rule whose condition holds on `ctx`
    /// (`bits` zeroed, one bit per rule position).
    pub(super) fn matches<'a>(
        &self,
        ctx: &'a Value,
        paths: &Paths,
        cache: &mut [Option<Option<&'a Value>>],
        bits: &mut [u64],
    ) {
        for group in &self.groups {
            let left = resolve(group.slot, ctx, paths, cache);
            match (&group.keys, left) {
                (Keys::Number(keys), Some(Value::Number(n))) => {
                    let left = num(n);
                    let (from, to) = span(keys, group.op, |k| num_order(k.0, left));
                    set(bits, keys[from..to].iter().map(|k| k.1));
                }
                (Keys::Text(keys), Some(Value::String(s))) => {
                    let left = s.as_bytes();
                    let (from, to) = span(keys, group.op, |k| k.0.as_bytes().cmp(left));
                    set(bits, keys[from..to].iter().map(|k| k.1));
                }
                // Another type, or missing: none of these operators holds.
                _ => {}
            }
        }
    }
}

/// The range of sorted `keys` whose rules hold for the left value, given
/// each key's order relative to it (`key.cmp(left)`).
fn span<K>(keys: &[K], op: Op, key_vs_left: impl Fn(&K) -> Ordering) -> (usize, usize) {
    let below = keys.partition_point(|k| key_vs_left(k).is_lt());
    let not_above = keys.partition_point(|k| key_vs_left(k).is_le());
    match op {
        // left == key
        Op::Eq | Op::In => (below, not_above),
        // left < key ⇔ key > left
        Op::Lt => (not_above, keys.len()),
        // left ≤ key ⇔ key ≥ left
        Op::Le => (below, keys.len()),
        // left > key ⇔ key < left
        Op::Gt => (0, below),
        // left ≥ key ⇔ key ≤ left
        Op::Ge => (0, not_above),
        _ => (0, 0),
    }
}

/// `compare_nums` as a total order (JSON numbers are never NaN).
fn num_order(a: Num, b: Num) -> Ordering {
    compare_nums(a, b).unwrap_or(Ordering::Equal)
}

fn set(bits: &mut [u64], rules: impl Iterator<Item = u32>) {
    for rule in rules {
        bits[rule as usize / 64] |= 1 << (rule % 64);
    }
}

/// Whether `rule`'s bit is set.
#[cfg(test)]
fn is_set(bits: &[u64], rule: usize) -> bool {
    bits[rule / 64] & (1 << (rule % 64)) != 0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::behavior::rules::compiled::samples::{COMPARISONS, edge_numbers};
    use crate::behavior::rules::expr::Expr;

    /// Every indexed rule's bit equals its own test's answer, over rule
    /// sets mixing every indexed operator (and unindexed ones) on numbers
    /// of both kinds (exact beyond 2^53, equal int and float), strings and
    /// string lists, and contexts with fields of each type or missing.
    #[test]
    fn bits_agree_with_each_rules_test() {
        let numbers = edge_numbers();
        let texts = [json!(""), json!("a"), json!("b"), json!("mars")];
        let lists = [json!(["mars", "venus"]), json!([]), json!(["a", "a", "b"])];
        let mut paths = Paths::default();
        let mut tests = Vec::new();
        for field in ["x", "y.z"] {
            for op in COMPARISONS {
                for operand in numbers.iter().chain(&texts).chain(&lists) {
                    if let Ok(expr) = Expr::cond(field, op, operand.clone()) {
                        tests.push(Compiled::new(&expr, &mut paths));
                    }
                }
            }
        }
        let index = RuleIndex::build(&tests);
        let indexed = (0..tests.len()).filter(|&i| index.is_indexed(i)).count();
        assert!(indexed >= 100, "{indexed} of {} indexed", tests.len());
        let values: Vec<Option<Value>> = numbers
            .iter()
            .chain(&texts)
            .chain(&lists)
            .cloned()
            .map(Some)
            .chain([None, Some(json!(null)), Some(json!({"k": 1}))])
            .collect();
        for x in &values {
            for y in [&values[0], &values[10], &values[13]] {
                let mut ctx = json!({"y": {}});
                if let Some(x) = x {
                    ctx["x"] = x.clone();
                }
                if let Some(y) = y {
                    ctx["y"]["z"] = y.clone();
                }
                let mut cache = vec![None; paths.len()];
                let mut bits = vec![0u64; tests.len().div_ceil(64)];
                index.matches(&ctx, &paths, &mut cache, &mut bits);
                for (i, test) in tests.iter().enumerate() {
                    let direct = test.eval(&ctx, &paths, &mut cache);
                    if index.is_indexed(i) {
                        assert_eq!(is_set(&bits, i), direct, "rule {i} on {ctx}");
                    } else {
                        assert!(!is_set(&bits, i), "unindexed rule {i} has a bit");
                    }
                }
            }
        }
    }
}
