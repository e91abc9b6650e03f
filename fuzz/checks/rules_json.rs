//! Rule-set JSON on untrusted bytes: loading never panics; a set that loads
//! round-trips through its JSON form exactly and evaluates without panic.

use net::behavior::rules::{RuleEngine, RuleSet};

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    let Ok(set) = RuleSet::from_json(data) else {
        return;
    };
    let text = set.to_json();
    let back = RuleSet::from_json(text.as_bytes()).expect("a loaded set reloads");
    assert_eq!(back, set);
    let engine = RuleEngine::from_rule_set(set).expect("a valid set fills an engine");
    let ctx = serde_json::json!({"a": {"b": [1, -2, 2.5, "x", null, u64::MAX]}, "s": "text"});
    let _ = engine.evaluate(&ctx, 0);
    let _ = engine.evaluate(&ctx, u64::MAX);
}
