//! Comparison of JSON values for the rules engine (COMPUTE.md §4.3).
//!
//! Departs from v0.11 (§8 item 12): numbers compare as numbers. `1 == 1.0`;
//! integers compare exactly whatever their sign or size (every JSON integer
//! is an `i64` or a `u64`, so both fit an `i128`); a float meets an integer
//! exactly too, through its floor, so `2^53 + 1` is not equal to the float
//! `2^53`; only two floats compare as `f64`, and NaN (which JSON cannot
//! carry, but a caller-built `Value` could in principle) is never equal or
//! ordered. Arrays and objects are equal when their members are, with the
//! same numeric rule applied inside.

use std::cmp::Ordering;

use serde_json::{Number, Value};

/// A JSON number as the engine sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Num {
    /// Any integer (`i64` or `u64`), exact.
    Int(i128),
    /// A float (what serde_json stored as `f64`).
    Float(f64),
}

pub(crate) fn num(n: &Number) -> Num {
    if let Some(i) = n.as_i64() {
        Num::Int(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Num::Int(i128::from(u))
    } else {
        Num::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Exact order of an integer and a float; `None` for NaN.
fn int_float(i: i128, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    // |f| ≥ 2^100 is beyond every JSON integer, whatever its sign.
    const FAR: f64 = 1.267_650_600_228_229_4e30; // 2^100
    if f >= FAR {
        return Some(Ordering::Less);
    }
    if f <= -FAR {
        return Some(Ordering::Greater);
    }
    let floor = f.floor();
    // In range, so the cast is exact.
    let fl = floor as i128;
    Some(match i.cmp(&fl) {
        Ordering::Equal if f > floor => Ordering::Less,
        other => other,
    })
}

/// Numeric order of two JSON numbers; `None` when NaN is involved.
pub fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    compare_nums(num(a), num(b))
}

/// [`compare_numbers`] on numbers already read.
pub(crate) fn compare_nums(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        (Num::Int(x), Num::Float(y)) => int_float(x, y),
        (Num::Float(x), Num::Int(y)) => int_float(y, x).map(Ordering::reverse),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y),
    }
}

/// Equality with numbers compared as numbers, recursively.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Order for Lt/Le/Gt/Ge: numbers numerically, strings by bytes; any other
/// pair (or NaN) is unordered.
pub fn json_order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ord(a: Value, b: Value) -> Option<Ordering> {
        json_order(&a, &b)
    }

    #[test]
    fn integer_and_float_are_equal_when_equal() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(json_eq(&json!(-3), &json!(-3.0)));
        assert!(!json_eq(&json!(1), &json!(1.5)));
        assert!(json_eq(&json!([1, {"a": 2}]), &json!([1.0, {"a": 2.0}])));
        assert!(!json_eq(&json!([1]), &json!([1, 2])));
        assert!(!json_eq(&json!({"a": 1}), &json!({"b": 1})));
    }

    #[test]
    fn large_integers_compare_exactly() {
        let big = u64::MAX;
        assert_eq!(ord(json!(big), json!(big - 1)), Some(Ordering::Greater));
        assert_eq!(ord(json!(i64::MIN), json!(u64::MAX)), Some(Ordering::Less));
        assert_eq!(ord(json!(-1), json!(0u64)), Some(Ordering::Less));
        assert_eq!(
            ord(json!(i64::MAX as u64 + 1), json!(i64::MAX)),
            Some(Ordering::Greater)
        );
        // 2^53 + 1 is not the float 2^53 (an f64 comparison would say equal).
        let p53 = 1u64 << 53;
        assert!(!json_eq(&json!(p53 + 1), &json!(p53 as f64)));
        assert_eq!(
            ord(json!(p53 + 1), json!(p53 as f64)),
            Some(Ordering::Greater)
        );
        assert!(json_eq(&json!(p53), &json!(p53 as f64)));
        // u64::MAX against 2^64 as a float: the float is larger.
        assert_eq!(
            ord(json!(u64::MAX), json!(18_446_744_073_709_551_616.0)),
            Some(Ordering::Less)
        );
    }

    #[test]
    fn fractional_floats_order_against_integers() {
        assert_eq!(ord(json!(2), json!(2.5)), Some(Ordering::Less));
        assert_eq!(ord(json!(3), json!(2.5)), Some(Ordering::Greater));
        assert_eq!(ord(json!(-2), json!(-2.5)), Some(Ordering::Greater));
        assert_eq!(ord(json!(-3), json!(-2.5)), Some(Ordering::Less));
        assert_eq!(ord(json!(2.5), json!(2)), Some(Ordering::Greater));
        assert_eq!(ord(json!(0.1), json!(0.2)), Some(Ordering::Less));
        assert_eq!(ord(json!(1e300), json!(u64::MAX)), Some(Ordering::Greater));
        assert_eq!(ord(json!(-1e300), json!(i64::MIN)), Some(Ordering::Less));
    }

    #[test]
    fn nan_is_never_equal_or_ordered() {
        let nan = Number::from_f64(f64::NAN);
        // serde_json refuses NaN outright; the guard in int_float covers
        // what a future Number could carry.
        assert!(nan.is_none());
        assert_eq!(int_float(1, f64::NAN), None);
    }

    #[test]
    fn strings_order_by_bytes_and_mixed_types_are_unordered() {
        assert_eq!(ord(json!("a"), json!("b")), Some(Ordering::Less));
        assert_eq!(ord(json!("B"), json!("a")), Some(Ordering::Less));
        assert_eq!(ord(json!("1"), json!(1)), None);
        assert_eq!(ord(json!(true), json!(false)), None);
        assert!(!json_eq(&json!("1"), &json!(1)));
        assert!(!json_eq(&json!(null), &json!(false)));
    }

    mod model {
        use super::*;
        use proptest::prelude::*;

        fn n_i(i: i64) -> Number {
            Number::from(i)
        }
        fn n_f(f: f64) -> Number {
            Number::from_f64(f).unwrap()
        }

        fn arb_number() -> impl Strategy<Value = Number> {
            prop_oneof![
                any::<i64>().prop_map(Number::from),
                any::<u64>().prop_map(Number::from),
                (proptest::num::f64::NORMAL | proptest::num::f64::ZERO).prop_map(n_f),
                // Near the 2^53 / 2^63 / 2^64 edges, as integers and floats.
                prop::sample::select(vec![53u32, 63, 64]).prop_flat_map(|e| {
                    (-3i64..=3).prop_map(move |d| {
                        let edge = 2f64.powi(e as i32);
                        if d % 2 == 0 {
                            n_f(edge + d as f64 * 2048.0)
                        } else {
                            Number::from(
                                ((edge as u128).saturating_add_signed(d as i128))
                                    .min(u64::MAX as u128) as u64,
                            )
                        }
                    })
                }),
            ]
        }

        proptest! {
            // The order is total and consistent on any three JSON numbers.
            #[test]
            fn order_is_total_antisymmetric_and_transitive(
                a in arb_number(), b in arb_number(), c in arb_number()
            ) {
                let ab = compare_numbers(&a, &b).unwrap();
                prop_assert_eq!(compare_numbers(&b, &a).unwrap(), ab.reverse());
                prop_assert_eq!(compare_numbers(&a, &a), Some(Ordering::Equal));
                let bc = compare_numbers(&b, &c).unwrap();
                if ab != Ordering::Greater && bc != Ordering::Greater {
                    prop_assert_ne!(compare_numbers(&a, &c).unwrap(), Ordering::Greater);
                }
                if ab == Ordering::Equal && bc == Ordering::Equal {
                    prop_assert_eq!(compare_numbers(&a, &c), Some(Ordering::Equal));
                }
            }

            // Integers of any sign and size: the model is i128 order.
            #[test]
            fn integers_match_i128(a in any::<i64>(), b in any::<u64>()) {
                let (x, y) = (Number::from(a), Number::from(b));
                prop_assert_eq!(compare_numbers(&x, &y), Some(i128::from(a).cmp(&i128::from(b))));
                prop_assert_eq!(compare_numbers(&y, &x), Some(i128::from(b).cmp(&i128::from(a))));
            }

            // Within ±2^53 every integer is an exact f64: the model is f64 order.
            #[test]
            fn small_integers_against_floats_match_f64(
                i in -(1i64 << 53)..=(1i64 << 53),
                f in proptest::num::f64::NORMAL | proptest::num::f64::ZERO | proptest::num::f64::SUBNORMAL,
            ) {
                prop_assert_eq!(compare_numbers(&n_i(i), &n_f(f)), (i as f64).partial_cmp(&f));
                prop_assert_eq!(compare_numbers(&n_f(f), &n_i(i)), f.partial_cmp(&(i as f64)));
            }

            // Integral floats are compared as the integer they are.
            #[test]
            fn integral_floats_match_i128(i in any::<i64>(), k in -1_000i64..1_000) {
                let f = (i / 1024 * 1024) as f64; // a multiple of 1024 below 2^63 is exact
                let j = (i / 1024 * 1024).saturating_add(k);
                prop_assert_eq!(
                    compare_numbers(&n_i(j), &n_f(f)),
                    Some(i128::from(j).cmp(&(f as i128)))
                );
            }
        }
    }
}
