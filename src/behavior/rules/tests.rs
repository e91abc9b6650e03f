//! Engine and rule-set tests (COMPUTE.md §9 "Rules").

use std::sync::{Arc, Barrier};

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn log(msg: &str) -> Action {
    Action::Log {
        level: LogLevel::Info,
        message: msg.into(),
    }
}

fn always(id: &str) -> Rule {
    Rule::new(id, Expr::Always, log(id))
}

fn released(e: &Evaluation) -> Vec<String> {
    e.outcomes
        .iter()
        .filter(|o| o.action.is_some())
        .map(|o| o.rule_id.to_string())
        .collect()
}

#[test]
fn priority_order_with_ties_in_insertion_order() {
    let engine = RuleEngine::new();
    engine.add(always("n1")).unwrap();
    engine
        .add(always("low").with_priority(Priority::Low))
        .unwrap();
    engine
        .add(always("hi").with_priority(Priority::Highest))
        .unwrap();
    engine.add(always("n2")).unwrap();
    engine
        .add(always("c60").with_priority(Priority::Custom(60)))
        .unwrap();
    engine
        .add(always("c-1").with_priority(Priority::Custom(-1)))
        .unwrap();
    engine
        .add(always("n3").with_priority(Priority::Custom(50)))
        .unwrap();
    let e = engine.evaluate(&json!({}), 0);
    assert_eq!(released(&e), ["hi", "c60", "n1", "n2", "n3", "low", "c-1"]);
}

#[test]
fn stop_on_match_ends_the_walk_even_when_suppressed() {
    let engine = RuleEngine::new();
    engine
        .add(
            always("stopper")
                .with_priority(Priority::High)
                .with_cooldown_ms(1_000)
                .stop_on_match(),
        )
        .unwrap();
    engine.add(always("after")).unwrap();
    let first = engine.evaluate(&json!({}), 0);
    assert_eq!(released(&first), ["stopper"]);
    assert!(first.outcomes[0].stop_processing);
    // In cooldown: suppressed, yet the walk still stops there.
    let second = engine.evaluate(&json!({}), 10);
    assert_eq!((second.outcomes.len(), second.visited), (1, 1));
    assert_eq!(second.outcomes[0].suppressed, Some(Suppression::Cooldown));
    assert!(second.outcomes[0].stop_processing);
    assert!(released(&second).is_empty());
    // A non-matching stop_on_match rule does not stop anything.
    let engine = RuleEngine::new();
    engine
        .add(Rule::new("stopper", Expr::Never, Action::Noop).stop_on_match())
        .unwrap();
    engine.add(always("after")).unwrap();
    let e = engine.evaluate(&json!({}), 0);
    assert_eq!(released(&e), ["after"]);
    assert_eq!(e.visited, 2);
}

#[test]
fn disabled_rules_never_match() {
    let engine = RuleEngine::new();
    engine.add(always("off").enabled(false)).unwrap();
    engine.add(always("on")).unwrap();
    let e = engine.evaluate(&json!({}), 0);
    assert_eq!(e.matched_ids(), ["on"]);
    engine.set_enabled("off", true).unwrap();
    assert_eq!(engine.evaluate(&json!({}), 0).matched_ids(), ["off", "on"]);
    assert!(engine.get("off").unwrap().enabled);
    engine.set_enabled("on", false).unwrap();
    assert_eq!(engine.evaluate(&json!({}), 0).matched_ids(), ["off"]);
    assert_eq!(
        engine.set_enabled("nope", true),
        Err(RuleError::UnknownRule("nope".into()))
    );
}

#[test]
fn tags_select_the_rules_visited() {
    let engine = RuleEngine::new();
    engine.add(always("a").with_tag("auth")).unwrap();
    engine.add(always("b").with_tag("billing")).unwrap();
    engine
        .add(always("ab").with_tag("auth").with_tag("billing"))
        .unwrap();
    let e = engine.evaluate_tagged(&json!({}), "auth", 0);
    assert_eq!(released(&e), ["a", "ab"]);
    assert_eq!(e.visited, 2);
    assert!(
        engine
            .evaluate_tagged(&json!({}), "none", 0)
            .outcomes
            .is_empty()
    );
    assert_eq!(engine.stats("b").unwrap().evaluations, 0);
}

#[test]
fn conditions_select_matches() {
    let engine = RuleEngine::new();
    let cond = Expr::And(vec![
        Expr::cond("req.size", Op::Gt, json!(1024)).unwrap(),
        Expr::not(Expr::cond("req.user.tier", Op::Eq, json!("pro")).unwrap()),
    ]);
    engine
        .add(Rule::new(
            "big",
            cond,
            Action::Reject {
                reason: "too big".into(),
            },
        ))
        .unwrap();
    let hit = json!({"req": {"size": 4096, "user": {"tier": "free"}}});
    let pro = json!({"req": {"size": 4096, "user": {"tier": "pro"}}});
    let small = json!({"req": {"size": 10, "user": {"tier": "free"}}});
    assert_eq!(engine.evaluate(&hit, 0).matched_ids(), ["big"]);
    assert!(engine.evaluate(&pro, 0).matched_ids().is_empty());
    assert!(engine.evaluate(&small, 0).matched_ids().is_empty());
    let first = engine.evaluate_first(&hit, 0).unwrap();
    assert_eq!(
        first.action,
        Some(Action::Reject {
            reason: "too big".into()
        })
    );
    assert!(engine.evaluate_first(&small, 0).is_none());
}

#[test]
fn evaluate_first_stops_at_the_first_match() {
    let engine = RuleEngine::new();
    engine
        .add(Rule::new("no", Expr::Never, Action::Noop))
        .unwrap();
    engine.add(always("yes")).unwrap();
    engine.add(always("later")).unwrap();
    let o = engine.evaluate_first(&json!({}), 0).unwrap();
    assert_eq!(&*o.rule_id, "yes");
    assert_eq!(engine.stats("later").unwrap().evaluations, 0);
}

#[test]
fn stats_count_every_outcome() {
    let engine = RuleEngine::new();
    engine
        .add(
            Rule::new(
                "r",
                Expr::cond("x", Op::Eq, json!(1)).unwrap(),
                Action::Noop,
            )
            .with_cooldown_ms(100),
        )
        .unwrap();
    engine.evaluate(&json!({"x": 1}), 1_000); // released
    engine.evaluate(&json!({"x": 1}), 1_050); // cooldown
    engine.evaluate(&json!({"x": 2}), 1_060); // no match
    engine.evaluate(&json!({"x": 1}), 1_100); // released
    let s = engine.stats("r").unwrap();
    assert_eq!(
        s,
        RuleStats {
            evaluations: 4,
            matches: 3,
            executions: 2,
            suppressed_cooldown: 1,
            suppressed_rate_limit: 0,
            last_match_ms: Some(1_100),
        }
    );
    assert_eq!(engine.evaluations(), 4);
    assert!(engine.stats("nope").is_none());
    assert!(engine.remove("r").is_some());
    assert!(engine.is_empty());
}

#[test]
fn action_chains_are_returned_whole() {
    let chain = Action::Chain(vec![
        log("one"),
        Action::Chain(vec![
            Action::IncrementCounter {
                name: "hits".into(),
                by: 1,
            },
            Action::Emit {
                channel: "alerts".into(),
                payload: json!({"k": 1}),
            },
        ]),
        Action::Noop,
    ]);
    let engine = RuleEngine::new();
    engine
        .add(Rule::new("c", Expr::Always, chain.clone()))
        .unwrap();
    let e = engine.evaluate(&json!({}), 0);
    let got: Vec<&Action> = e.actions().collect();
    assert_eq!(got, [&chain]);
    let leaves = chain.flatten();
    assert_eq!(leaves.len(), 4);
    assert_eq!(leaves[0], &log("one"));
    assert_eq!(leaves[3], &Action::Noop);
    assert_eq!(chain.chain_depth(), 2);
    // Too deep a chain is refused.
    let mut deep = Action::Noop;
    for _ in 0..=rule::MAX_CHAIN_DEPTH {
        deep = Action::Chain(vec![deep]);
    }
    assert!(matches!(
        engine.add(Rule::new("deep", Expr::Always, deep)),
        Err(RuleError::InvalidRule { .. })
    ));
}

#[test]
fn cooldown_is_exact_at_its_edge() {
    let engine = RuleEngine::new();
    engine.add(always("r").with_cooldown_ms(100)).unwrap();
    assert_eq!(released(&engine.evaluate(&json!({}), 1_000)), ["r"]);
    assert!(released(&engine.evaluate(&json!({}), 1_099)).is_empty());
    assert_eq!(released(&engine.evaluate(&json!({}), 1_100)), ["r"]);
    // A clock going backwards reads as no time elapsed.
    assert!(released(&engine.evaluate(&json!({}), 500)).is_empty());
}

#[test]
fn rate_limit_is_a_sliding_window_exact_at_its_edges() {
    let engine = RuleEngine::new();
    engine.add(always("r").with_rate_limit(3, 1_000)).unwrap();
    let fire = |t: u64| !released(&engine.evaluate(&json!({}), t)).is_empty();
    // Three releases late in one "fixed" window…
    assert!(fire(900));
    assert!(fire(950));
    assert!(fire(999));
    assert!(!fire(999));
    // …and none just after the fixed boundary: a fixed window would burst
    // three more here (six in 101 ms).
    assert!(!fire(1_000));
    assert!(!fire(1_899));
    // The first release leaves the window exactly window_ms after it.
    assert!(fire(1_900));
    assert!(!fire(1_949));
    assert!(fire(1_950));
    assert!(fire(1_999));
    assert!(!fire(2_000));
    let s = engine.stats("r").unwrap();
    assert_eq!(s.executions, 6);
    assert_eq!(s.suppressed_rate_limit, 5);
}

#[test]
fn zero_executions_never_release() {
    let engine = RuleEngine::new();
    engine.add(always("r").with_rate_limit(0, 1_000)).unwrap();
    for t in [0, 1_000, 10_000, u64::MAX] {
        assert!(released(&engine.evaluate(&json!({}), t)).is_empty());
    }
    assert!(matches!(
        engine.add(always("z").with_rate_limit(1, 0)),
        Err(RuleError::InvalidRule { .. })
    ));
}

#[test]
fn duplicate_ids_are_refused_atomically() {
    let engine = RuleEngine::new();
    engine.add(always("a")).unwrap();
    assert_eq!(
        engine.add(always("a")),
        Err(RuleError::DuplicateId("a".into()))
    );
    assert_eq!(
        engine.add_all([always("b"), always("c"), always("b")]),
        Err(RuleError::DuplicateId("b".into()))
    );
    assert_eq!(engine.len(), 1);
}

#[test]
fn concurrent_evaluate_never_exceeds_a_rate_limit() {
    const THREADS: usize = 8;
    const EACH: usize = 500;
    let engine = Arc::new(RuleEngine::new());
    engine
        .add(always("limited").with_rate_limit(37, 10_000))
        .unwrap();
    engine.add(always("free")).unwrap();
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (engine, barrier) = (engine.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                (0..EACH)
                    .map(|i| {
                        // All inside one window: at most 37 releases.
                        let now = 5_000 + ((t * EACH + i) % 100) as u64;
                        engine
                            .evaluate(&json!({}), now)
                            .outcomes
                            .iter()
                            .filter(|o| &*o.rule_id == "limited" && o.action.is_some())
                            .count()
                    })
                    .sum::<usize>()
            })
        })
        .collect();
    let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 37);
    let s = engine.stats("limited").unwrap();
    assert_eq!(s.executions, 37);
    assert_eq!(s.evaluations, (THREADS * EACH) as u64);
    assert_eq!(
        engine.stats("free").unwrap().executions,
        (THREADS * EACH) as u64
    );
}

#[test]
fn rule_set_json_loads_and_names_duplicates() {
    let text = r#"{"name": "edge", "rules": [{
        "id": "big-payload", "priority": "high",
        "condition": {"and": [
          {"single": {"field": "req.size", "op": "Gt", "value": 1048576}},
          {"not": {"single": {"field": "req.user.tier", "op": "Eq", "value": "pro"}}}]},
        "action": {"reject": {"reason": "too large"}},
        "rate_limit": {"max_executions": 10, "window_ms": 60000},
        "stop_on_match": true}]}"#;
    let set = RuleSet::from_json(text.as_bytes()).unwrap();
    assert_eq!(set.rules[0].priority, Priority::High);
    assert!(set.rules[0].enabled);
    let engine = RuleEngine::from_rule_set(set.clone()).unwrap();
    let e = engine.evaluate(
        &json!({"req": {"size": 2_000_000, "user": {"tier": "x"}}}),
        0,
    );
    assert_eq!(e.matched_ids(), ["big-payload"]);
    assert_eq!(engine.to_rule_set("edge"), set);

    let dup = r#"{"name": "d", "rules": [
        {"id": "x", "condition": "always", "action": "noop"},
        {"id": "y", "condition": "never", "action": "noop"},
        {"id": "x", "condition": "always", "action": "noop"}]}"#;
    assert_eq!(
        RuleSet::from_json(dup.as_bytes()),
        Err(RuleError::DuplicateId("x".into()))
    );
}

#[test]
fn rule_set_json_refuses_bad_input() {
    let bad = [
        "",
        "{",
        "[]",
        r#"{"name": "n"}"#,
        r#"{"name": "n", "rules": [], "extra": 1}"#,
        r#"{"name": "n", "rules": [{"id": "x", "condition": "always", "action": "noop", "typo": 1}]}"#,
        r#"{"name": "n", "rules": [{"id": "x", "condition": {"single": {"field": "a", "op": "NotIn", "value": 5}}, "action": "noop"}]}"#,
        r#"{"name": "n", "rules": [{"id": "x", "condition": {"single": {"field": "a", "op": "Matches", "value": "("}}, "action": "noop"}]}"#,
        r#"{"name": "n", "rules": [{"id": "x", "condition": {"single": {"field": "a..b", "op": "Eq"}}, "action": "noop"}]}"#,
        r#"{"name": "n", "rules": [{"id": "", "condition": "always", "action": "noop"}]}"#,
        r#"{"name": "n", "rules": [{"id": "x", "condition": "always", "action": "noop", "rate_limit": {"max_executions": 1, "window_ms": 0}}]}"#,
    ];
    for text in bad {
        assert!(RuleSet::from_json(text.as_bytes()).is_err(), "{text}");
    }
    // Nesting beyond the limits is an error, not a stack overflow.
    let deep = format!(
        r#"{{"name": "n", "rules": [{{"id": "x", "condition": {}"always"{}, "action": "noop"}}]}}"#,
        r#"{"not": "#.repeat(100_000),
        "}".repeat(100_000)
    );
    assert!(RuleSet::from_json(deep.as_bytes()).is_err());
    let nested = format!(
        r#"{{"name": "n", "rules": [{{"id": "x", "condition": {}"always"{}, "action": "noop"}}]}}"#,
        r#"{"not": "#.repeat(expr::MAX_EXPR_DEPTH),
        "}".repeat(expr::MAX_EXPR_DEPTH)
    );
    assert!(matches!(
        RuleSet::from_json(nested.as_bytes()),
        Err(RuleError::InvalidRule { .. })
    ));
    let huge = vec![b' '; json::MAX_RULESET_BYTES + 1];
    assert!(matches!(
        RuleSet::from_json(&huge),
        Err(RuleError::TooLarge { .. })
    ));
}

// ---- property: random rule sets round-trip through JSON exactly ----

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<u64>().prop_map(|u| json!(u)),
        (proptest::num::f64::NORMAL | proptest::num::f64::ZERO).prop_map(|f| json!(f)),
        "[a-z0-9 ._-]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_condition() -> impl Strategy<Value = Condition> {
    let path = "[a-z]{1,5}(\\.[a-z0-9]{1,3}){0,2}";
    prop_oneof![
        (
            path,
            prop::sample::select(vec![
                Op::Eq,
                Op::Ne,
                Op::Lt,
                Op::Le,
                Op::Gt,
                Op::Ge,
                Op::Contains,
                Op::Exists,
                Op::NotExists
            ]),
            arb_json()
        )
            .prop_map(|(p, op, v)| Condition::new(p, op, v).unwrap()),
        (
            path,
            prop::sample::select(vec![Op::In, Op::NotIn]),
            prop::collection::vec(arb_json(), 0..3)
        )
            .prop_map(|(p, op, v)| Condition::new(p, op, Value::Array(v)).unwrap()),
        (
            path,
            prop::sample::select(vec![Op::StartsWith, Op::EndsWith, Op::Matches]),
            "[a-z]{0,4}(\\.\\*)?"
        )
            .prop_map(|(p, op, s)| Condition::new(p, op, json!(s)).unwrap()),
    ]
}

fn arb_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        arb_condition().prop_map(Expr::Single),
        Just(Expr::Always),
        Just(Expr::Never),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 0..3).prop_map(Expr::Or),
            inner.prop_map(Expr::not),
        ]
    })
}

fn arb_action() -> impl Strategy<Value = Action> {
    let s = "[a-zA-Z0-9 ]{0,6}";
    let leaf = prop_oneof![
        (
            prop::sample::select(vec![
                LogLevel::Trace,
                LogLevel::Debug,
                LogLevel::Info,
                LogLevel::Warn,
                LogLevel::Error
            ]),
            s
        )
            .prop_map(|(level, message)| Action::Log { level, message }),
        (s, arb_json()).prop_map(|(channel, payload)| Action::Emit { channel, payload }),
        (s, arb_json()).prop_map(|(key, value)| Action::SetContext { key, value }),
        (s, any::<i64>()).prop_map(|(name, by)| Action::IncrementCounter { name, by }),
        (s, s).prop_map(|(severity, message)| Action::Alert { severity, message }),
        (any::<u32>(), any::<u64>()).prop_map(|(max_per_sec, duration_ms)| Action::Throttle {
            max_per_sec,
            duration_ms
        }),
        s.prop_map(|reason| Action::Reject { reason }),
        s.prop_map(|target| Action::Redirect { target }),
        (s, any::<i64>()).prop_map(|(target, delta)| Action::Scale { target, delta }),
        (s, arb_json()).prop_map(|(name, params)| Action::Custom { name, params }),
        Just(Action::Noop),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop::collection::vec(inner, 0..3).prop_map(Action::Chain)
    })
}

fn arb_priority() -> impl Strategy<Value = Priority> {
    prop_oneof![
        Just(Priority::Lowest),
        Just(Priority::Low),
        Just(Priority::Normal),
        Just(Priority::High),
        Just(Priority::Highest),
        any::<i32>().prop_map(Priority::Custom),
    ]
}

prop_compose! {
    fn arb_rule(n: usize)(
        name in ".{0,6}",
        description in ".{0,6}",
        priority in arb_priority(),
        condition in arb_expr(),
        action in arb_action(),
        enabled in any::<bool>(),
        tags in prop::collection::vec("[a-z]{1,4}", 0..3),
        cooldown_ms in proptest::option::of(any::<u64>()),
        rate_limit in proptest::option::of((0..=rule::MAX_RATE_EXECUTIONS, 1..u64::MAX)),
        stop_on_match in any::<bool>(),
        created_ms in any::<u64>(),
        updated_ms in any::<u64>(),
    ) -> Rule {
        Rule {
            id: format!("rule-{n}"),
            name,
            description,
            priority,
            condition,
            action,
            enabled,
            tags,
            cooldown_ms,
            rate_limit: rate_limit.map(|(max_executions, window_ms)| RateLimit { max_executions, window_ms }),
            stop_on_match,
            created_ms,
            updated_ms,
        }
    }
}

fn arb_rule_set() -> impl Strategy<Value = RuleSet> {
    (0usize..6)
        .prop_flat_map(|n| (0..n).map(arb_rule).collect::<Vec<_>>())
        .prop_map(|rules| RuleSet::new("random", rules))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn rule_sets_round_trip_through_json(set in arb_rule_set()) {
        let text = set.to_json();
        let back = RuleSet::from_json(text.as_bytes()).unwrap();
        prop_assert_eq!(&back, &set);
        // And the engine's export keeps them, in evaluation order.
        let engine = RuleEngine::from_rule_set(set.clone()).unwrap();
        let exported = engine.to_rule_set("random");
        prop_assert_eq!(exported.rules.len(), set.rules.len());
        for rule in &set.rules {
            let got = engine.get(&rule.id);
            prop_assert_eq!(got.as_ref(), Some(rule));
        }
        // Evaluating against arbitrary contexts never panics.
        let _ = engine.evaluate(&json!({"a": {"b": [1, "x", null]}}), 0);
    }
}

#[test]
fn fuzz_seeds_are_what_their_names_say() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/rules_json");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let loaded = RuleSet::from_json(&std::fs::read(&path).unwrap());
        if name.starts_with("valid_") {
            assert!(loaded.is_ok(), "{name}: {loaded:?}");
            seen += 1;
        } else if name.starts_with("invalid_") {
            assert!(loaded.is_err(), "{name}");
            seen += 1;
        }
    }
    assert!(seen >= 6);
}

#[test]
fn visit_counts_add_up_across_full_tagged_and_stopped_walks() {
    let engine = RuleEngine::new();
    let mut first = Rule::new(
        "a",
        Expr::cond("x", Op::Eq, json!(1)).unwrap(),
        Action::Noop,
    );
    first.stop_on_match = true;
    first.tags = vec!["t".into()];
    engine.add(first).unwrap();
    engine
        .add(Rule::new(
            "b",
            Expr::cond("x", Op::Gt, json!(0)).unwrap(),
            Action::Noop,
        ))
        .unwrap();
    let visits = |id: &str| engine.stats(id).unwrap().evaluations;
    engine.evaluate(&json!({"x": 2}), 0); // a, b (full walk)
    engine.evaluate(&json!({"x": 1}), 0); // a stops the walk: a only
    engine.evaluate_tagged(&json!({"x": 2}), "t", 0); // a only
    assert!(engine.evaluate_first(&json!({"x": 2}), 0).is_some()); // a, b: b matched last
    assert_eq!((visits("a"), visits("b")), (4, 2));
    // A rule added later counts only the walks after it.
    engine
        .add(Rule::new("c", Expr::Always, Action::Noop))
        .unwrap();
    engine.evaluate(&json!({"x": 2}), 0);
    assert_eq!((visits("a"), visits("b"), visits("c")), (5, 3, 1));
    // Paths shared by several rules resolve once, and missing ones stay
    // missing for every rule that tests them.
    engine
        .add(Rule::new(
            "d",
            Expr::cond("y", Op::NotExists, Value::Null).unwrap(),
            Action::Noop,
        ))
        .unwrap();
    let got = engine.evaluate(&json!({"x": 2}), 0);
    assert_eq!(got.matched_ids(), vec!["b", "c", "d"]);
}

/// One comparison rule of the index's kinds (or another), on one of two
/// fields.
fn arb_simple_rule(i: usize) -> impl Strategy<Value = Rule> {
    let operand = prop_oneof![
        (-3i64..4).prop_map(|n| json!(n)),
        (-3i64..4).prop_map(|n| json!(n as f64 + 0.5)),
        Just(json!(u64::MAX)),
        Just(json!(9_007_199_254_740_993u64)),
        prop::sample::select(vec!["", "a", "b", "mars"]).prop_map(|s| json!(s)),
        Just(json!(["mars", "venus"])),
        Just(json!(["a", "b"])),
    ];
    let op = prop::sample::select(super::compiled::samples::COMPARISONS.to_vec());
    (
        prop::sample::select(vec!["x", "y.z"]),
        op,
        operand,
        0u8..3,
        any::<bool>(),
    )
        .prop_filter_map(
            "an operand the operator refuses",
            move |(f, op, v, p, stop)| {
                let mut rule = Rule::new(format!("r{i}"), Expr::cond(f, op, v).ok()?, Action::Noop);
                rule.priority = Priority::Custom(p.into());
                rule.stop_on_match = stop;
                Some(rule)
            },
        )
}

fn arb_field_value() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        (-4i64..5).prop_map(|n| Some(json!(n))),
        (-4i64..5).prop_map(|n| Some(json!(n as f64 + 0.5))),
        Just(Some(json!(9_007_199_254_740_992.0))),
        Just(Some(json!(u64::MAX))),
        prop::sample::select(vec!["", "a", "b", "mars", "venus"]).prop_map(|s| Some(json!(s))),
        Just(Some(json!(null))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The engine (through its index of single comparisons) matches what
    /// each rule's own condition says, in priority order, stopping where a
    /// matched rule says so.
    #[test]
    fn evaluation_matches_each_rules_condition(
        rules in (1usize..40).prop_flat_map(|n| (0..n).map(arb_simple_rule).collect::<Vec<_>>()),
        x in arb_field_value(),
        z in arb_field_value(),
    ) {
        let engine = RuleEngine::new();
        engine.add_all(rules.clone()).unwrap();
        let mut ctx = json!({"y": {}});
        if let Some(x) = x {
            ctx["x"] = x;
        }
        if let Some(z) = z {
            ctx["y"]["z"] = z;
        }
        let mut ordered = rules.clone();
        ordered.sort_by_key(|r| std::cmp::Reverse(r.priority.value()));
        let mut expected = Vec::new();
        for rule in &ordered {
            if rule.condition.eval(&ctx) {
                expected.push(rule.id.as_str());
                if rule.stop_on_match {
                    break;
                }
            }
        }
        let got = engine.evaluate(&ctx, 0);
        prop_assert_eq!(got.matched_ids(), expected);
    }
}
