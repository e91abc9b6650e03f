//! Safety envelope tests (COMPUTE.md §9 "Safety").

use std::sync::{Arc, Barrier};

use super::*;

fn limits() -> SafetyLimits {
    SafetyLimits::default()
}

fn envelope(limits: SafetyLimits) -> SafetyEnvelope {
    SafetyEnvelope::new(SafetyConfig {
        limits,
        ..SafetyConfig::default()
    })
}

fn req(source: &str) -> SafetyRequest {
    SafetyRequest::new(source)
}

#[test]
fn kill_switch_refuses_until_reset() {
    let env = SafetyEnvelope::default();
    env.engage_kill_switch_at("incident 42", 1_000, None);
    assert_eq!(
        env.check_at(&req("a"), 1_000).unwrap_err(),
        SafetyError::KillSwitch {
            reason: "incident 42".into()
        }
    );
    assert!(env.acquire_at(&req("a"), 999_999).is_err());
    // AuditOnly does not bypass it; Disabled does.
    env.set_mode(SafetyMode::AuditOnly);
    assert!(env.acquire_at(&req("a"), 2_000).is_err());
    env.set_mode(SafetyMode::Disabled);
    assert!(env.acquire_at(&req("a"), 2_000).is_ok());
    env.set_mode(SafetyMode::Enforce);
    env.reset_kill_switch();
    assert!(env.acquire_at(&req("a"), 2_000).is_ok());
    assert_eq!(env.usage_at(2_000).concurrent, 0);
}

#[test]
fn kill_switch_auto_resets_exactly() {
    let env = SafetyEnvelope::default();
    env.engage_kill_switch_at("storm", 10_000, Some(5_000));
    assert!(env.kill_switch_engaged_at(14_999));
    assert!(env.check_at(&req("a"), 14_999).is_err());
    assert!(env.check_at(&req("a"), 15_000).is_ok());
    assert!(!env.kill_switch_engaged_at(15_000));
    // Once lifted it stays lifted, even for an earlier clock reading.
    assert!(env.check_at(&req("a"), 14_000).is_ok());
}

#[test]
fn concurrent_cap_and_release() {
    let env = envelope(SafetyLimits {
        max_concurrent: 2,
        ..limits()
    });
    let a = env.acquire_at(&req("s"), 0).unwrap();
    let b = env.acquire_at(&req("s"), 0).unwrap();
    assert_eq!(
        env.acquire_at(&req("s"), 0).unwrap_err(),
        SafetyError::ConcurrencyLimit { max: 2 }
    );
    // check consumes nothing, and says the same.
    assert!(env.check_at(&req("s"), 0).is_err());
    drop(a);
    assert!(env.check_at(&req("s"), 0).is_ok());
    let c = env.acquire_at(&req("s"), 0).unwrap();
    assert_eq!(env.usage_at(0).concurrent, 2);
    drop((b, c));
    assert_eq!(env.usage_at(0).concurrent, 0);
}

#[test]
fn check_consumes_nothing() {
    let env = envelope(SafetyLimits {
        global_rpm: 1,
        ..limits()
    });
    for _ in 0..10 {
        assert!(
            env.check_at(&req("s").tokens(5).memory_mb(5).cost_cents(5), 0)
                .is_ok()
        );
    }
    assert_eq!(env.usage_at(0), SafetyUsage::default());
    let _g = env.acquire_at(&req("s"), 0).unwrap();
    assert!(env.check_at(&req("s"), 0).is_err());
}

#[test]
fn memory_tokens_and_cost_caps() {
    let env = envelope(SafetyLimits {
        max_memory_mb: 100,
        max_tokens_per_request: 50,
        max_cost_per_hour_cents: 30,
        ..limits()
    });
    let g = env.acquire_at(&req("s").memory_mb(60), 0).unwrap();
    assert_eq!(
        env.acquire_at(&req("s").memory_mb(41), 0).unwrap_err(),
        SafetyError::MemoryLimit {
            requested: 41,
            in_use: 60,
            max: 100
        }
    );
    let _h = env.acquire_at(&req("s").memory_mb(40), 0).unwrap();
    drop(g);
    assert_eq!(env.usage_at(0).memory_mb, 40);
    assert_eq!(
        env.check_at(&req("s").tokens(51), 0).unwrap_err(),
        SafetyError::TokensPerRequest {
            requested: 51,
            max: 50
        }
    );
    let mut c = env.acquire_at(&req("s").cost_cents(20), 0).unwrap();
    c.consume(0, 20);
    drop(c);
    assert!(matches!(
        env.acquire_at(&req("s").cost_cents(11), 1_000),
        Err(SafetyError::CostLimit { spent: 20, .. })
    ));
    // The hour slides: the cost leaves it an hour (bucket) later.
    assert!(
        env.check_at(&req("s").cost_cents(11), COST_WINDOW_MS - 1)
            .is_err()
    );
    assert!(
        env.check_at(
            &req("s").cost_cents(11),
            COST_WINDOW_MS + COST_GRANULARITY_MS
        )
        .is_ok()
    );
}

#[test]
fn token_and_cost_release() {
    let env = envelope(SafetyLimits {
        tokens_per_minute: 100,
        burst: 1.5, // cap 150
        max_tokens_per_request: 1_000,
        max_cost_per_hour_cents: 100,
        ..limits()
    });
    // Unconsumed reservations come back whole on drop.
    let g = env
        .acquire_at(&req("s").tokens(150).cost_cents(100), 0)
        .unwrap();
    assert!(env.check_at(&req("s").tokens(1), 0).is_err());
    assert!(env.check_at(&req("s").cost_cents(1), 0).is_err());
    drop(g);
    let u = env.usage_at(0);
    assert_eq!((u.tokens_last_minute, u.cost_last_hour_cents), (0, 0));
    // Consumed parts stay charged; the rest comes back.
    let mut g = env
        .acquire_at(&req("s").tokens(100).cost_cents(50), 10)
        .unwrap();
    g.consume(40, 30);
    drop(g);
    let u = env.usage_at(10);
    assert_eq!((u.tokens_last_minute, u.cost_last_hour_cents), (40, 30));
    // Consuming more than reserved charges only the reservation.
    let mut g = env
        .acquire_at(&req("s").tokens(10).cost_cents(10), 20)
        .unwrap();
    g.consume(1_000, 1_000);
    drop(g);
    let u = env.usage_at(20);
    assert_eq!((u.tokens_last_minute, u.cost_last_hour_cents), (50, 40));
    // Burst: floor(100 × 1.5) = 150 tokens a minute.
    assert!(env.check_at(&req("s").tokens(100), 20).is_ok());
    assert!(env.check_at(&req("s").tokens(101), 20).is_err());
    // A release after the reservation left the window gives nothing back
    // (no wrap): reserve, let the minute pass, record more, then drop.
    let g = env.acquire_at(&req("s").tokens(100), 100).unwrap();
    let mut h = env
        .acquire_at(&req("s").tokens(90), 100 + RATE_WINDOW_MS)
        .unwrap();
    h.consume(90, 0);
    drop(g);
    assert_eq!(env.usage_at(100 + RATE_WINDOW_MS).tokens_last_minute, 90);
    drop(h);
}

#[test]
fn content_size_and_patterns_on_check_and_acquire() {
    let env = SafetyEnvelope::new(SafetyConfig {
        policies: vec![
            ContentPolicy::max_size("size", 32, PolicyAction::Block),
            ContentPolicy::block("secrets", r"(?i)password\s*=", PolicyAction::Block).unwrap(),
            ContentPolicy::require("greeting", r"^(hi|hello)\b", PolicyAction::Block).unwrap(),
            ContentPolicy::block("shout", r"[A-Z]{5,}", PolicyAction::Warn).unwrap(),
            ContentPolicy::redact("cards", r"\b\d{4}-\d{4}-\d{4}-\d{4}\b").unwrap(),
        ],
        ..SafetyConfig::default()
    });
    let ask = |content: &str| req("s").content(content);
    assert!(env.check_at(&ask("hello there"), 0).is_ok());
    for op in [0, 1] {
        let run = |c: &str| -> Result<Clearance, SafetyError> {
            if op == 0 {
                env.check_at(&ask(c), 0)
            } else {
                env.acquire_at(&ask(c), 0).map(|g| Clearance {
                    warnings: g.warnings().to_vec(),
                    redacted: g.redacted().map(str::to_owned),
                })
            }
        };
        assert!(matches!(
            run("hello this message is far too long to pass"),
            Err(SafetyError::ContentTooLarge {
                size: 42,
                max: 32,
                ..
            })
        ));
        assert!(matches!(
            run("hi PassWord = x"),
            Err(SafetyError::BlockedContent { .. })
        ));
        // A regex, not a substring: "password=" with a space variant.
        assert!(run("hi password  =").is_err());
        assert!(matches!(
            run("yo there"),
            Err(SafetyError::MissingRequiredContent { .. })
        ));
        let warned = run("hi HELLO WORLD").unwrap();
        assert!(matches!(
            warned.warnings.as_slice(),
            [SafetyError::BlockedContent { policy }] if policy == "shout"
        ));
        let redacted = run("hi card 1234-5678-9012-3456").unwrap();
        assert_eq!(redacted.redacted.as_deref(), Some("hi card [REDACTED]"));
    }
    assert!(matches!(
        ContentPolicy::block("bad", "(", PolicyAction::Block),
        Err(SafetyError::InvalidPattern { .. })
    ));
}

#[test]
fn audit_only_admits_and_warns() {
    let env = SafetyEnvelope::new(SafetyConfig {
        limits: SafetyLimits {
            max_concurrent: 1,
            ..limits()
        },
        mode: SafetyMode::AuditOnly,
        policies: vec![ContentPolicy::block("no-x", "x", PolicyAction::Block).unwrap()],
        ..SafetyConfig::default()
    });
    let a = env.acquire_at(&req("s"), 0).unwrap();
    assert!(a.warnings().is_empty());
    let b = env.acquire_at(&req("s").content("x"), 0).unwrap();
    assert_eq!(b.warnings().len(), 2, "{:?}", b.warnings());
    // Counted without caps, and released.
    assert_eq!(env.usage_at(0).concurrent, 2);
    drop((a, b));
    assert_eq!(env.usage_at(0).concurrent, 0);
    let audit = env.audit_entries();
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().all(|e| e.kind == AuditKind::Warning));
}

#[test]
fn disabled_admits_and_counts_nothing() {
    let env = envelope(SafetyLimits {
        max_concurrent: 0,
        global_rpm: 0,
        ..limits()
    });
    assert!(env.acquire_at(&req("s"), 0).is_err());
    env.set_mode(SafetyMode::Disabled);
    let g = env.acquire_at(&req("s").memory_mb(u64::MAX), 0).unwrap();
    assert!(g.is_unaccounted());
    assert_eq!(env.usage_at(0), SafetyUsage::default());
    drop(g);
}

#[test]
fn no_release_underflow_after_disabled_to_enforce() {
    let env = SafetyEnvelope::default();
    env.set_mode(SafetyMode::Disabled);
    let unaccounted: Vec<_> = (0..5)
        .map(|_| {
            env.acquire_at(&req("s").memory_mb(10).tokens(10), 0)
                .unwrap()
        })
        .collect();
    env.set_mode(SafetyMode::Enforce);
    let held = env.acquire_at(&req("s").memory_mb(7).tokens(3), 0).unwrap();
    drop(unaccounted);
    let u = env.usage_at(0);
    assert_eq!((u.concurrent, u.memory_mb, u.tokens_last_minute), (1, 7, 3));
    // And the other way round: an Enforce guard dropped while Disabled.
    env.set_mode(SafetyMode::Disabled);
    drop(held);
    env.set_mode(SafetyMode::Enforce);
    let u = env.usage_at(0);
    assert_eq!((u.concurrent, u.memory_mb, u.tokens_last_minute), (0, 0, 0));
    assert!(env.acquire_at(&req("s"), 0).is_ok());
}

#[test]
fn overflow_is_refused() {
    let env = envelope(SafetyLimits {
        max_memory_mb: u64::MAX,
        max_cost_per_hour_cents: u64::MAX,
        max_tokens_per_request: u64::MAX,
        tokens_per_minute: u64::MAX,
        ..limits()
    });
    let _g = env.acquire_at(&req("s").memory_mb(10), 0).unwrap();
    assert_eq!(
        env.acquire_at(&req("s").memory_mb(u64::MAX), 0)
            .unwrap_err(),
        SafetyError::Overflow { what: "memory" }
    );
    let _c = env
        .acquire_at(&req("s").cost_cents(u64::MAX - 1), 0)
        .unwrap();
    assert!(matches!(
        env.acquire_at(&req("s").cost_cents(2), 0),
        Err(SafetyError::CostLimit { .. })
    ));
    assert_eq!(env.usage_at(0).memory_mb, 10);
    assert_eq!(env.audit_entries()[0].kind, AuditKind::Error);
}

#[test]
fn rate_limits_slide_without_boundary_bursts() {
    let env = envelope(SafetyLimits {
        global_rpm: 5,
        per_source_rpm: 3,
        ..limits()
    });
    let hit = |src: &str, t: u64| env.acquire_at(&req(src), t).is_ok();
    assert!(hit("a", 59_000));
    assert!(hit("a", 59_500));
    assert!(hit("a", 59_999));
    assert!(!hit("a", 60_000), "a fixed window would reopen here");
    assert!(matches!(
        env.acquire_at(&req("a"), 60_000),
        Err(SafetyError::SourceRateLimit { .. })
    ));
    assert!(hit("b", 60_000));
    assert!(hit("b", 60_001));
    assert!(matches!(
        env.acquire_at(&req("c"), 60_002),
        Err(SafetyError::GlobalRateLimit { max: 5 })
    ));
    // Bucket rollover: a's first request leaves exactly 60 s after it.
    assert!(!hit("a", 118_999));
    assert!(hit("a", 119_000));
    // A refused request is not counted anywhere (no rollback needed).
    assert_eq!(env.usage_at(119_000).requests_last_minute, 5);
}

#[test]
fn limit_zero_admits_nothing() {
    for l in [
        SafetyLimits {
            global_rpm: 0,
            ..limits()
        },
        SafetyLimits {
            per_source_rpm: 0,
            ..limits()
        },
        SafetyLimits {
            max_concurrent: 0,
            ..limits()
        },
    ] {
        let env = envelope(l);
        for t in [0, 60_000, 120_000, u64::MAX] {
            assert!(env.acquire_at(&req("s"), t).is_err());
        }
    }
}

#[test]
fn usage_and_audit_entries() {
    let env = SafetyEnvelope::new(SafetyConfig {
        limits: SafetyLimits {
            per_source_rpm: 1,
            ..limits()
        },
        audit: AuditConfig {
            log_success: true,
            ..AuditConfig::default()
        },
        ..SafetyConfig::default()
    });
    let _g = env
        .acquire_at(&req("a").tokens(7).memory_mb(3).cost_cents(2), 5)
        .unwrap();
    assert!(env.acquire_at(&req("a"), 6).is_err());
    let _h = env.acquire_at(&req("b"), 7).unwrap();
    assert_eq!(
        env.usage_at(7),
        SafetyUsage {
            concurrent: 2,
            memory_mb: 3,
            requests_last_minute: 2,
            tokens_last_minute: 7,
            cost_last_hour_cents: 2,
            sources: 2,
        }
    );
    let audit = env.audit_entries();
    let kinds: Vec<_> = audit
        .iter()
        .map(|e| (e.kind, e.source.as_str(), e.at_ms))
        .collect();
    assert_eq!(
        kinds,
        [
            (AuditKind::Success, "a", 5),
            (AuditKind::Blocked, "a", 6),
            (AuditKind::Success, "b", 7)
        ]
    );
    env.clear_audit();
    assert!(env.audit_entries().is_empty());
    // Successes are not logged by default; the ring is bounded.
    let env = envelope(SafetyLimits {
        max_concurrent: 0,
        ..limits()
    });
    for t in 0..(AUDIT_CAPACITY as u64 + 10) {
        let _ = env.acquire_at(&req("s"), t);
    }
    let audit = env.audit_entries();
    assert_eq!(audit.len(), AUDIT_CAPACITY);
    assert_eq!(audit[0].at_ms, 10);
}

#[test]
fn idle_sources_are_collected_and_bounded() {
    let env = envelope(SafetyLimits {
        max_sources: 3,
        ..limits()
    });
    for s in ["a", "b", "c"] {
        drop(env.acquire_at(&req(s), 0).unwrap());
    }
    assert!(matches!(
        env.acquire_at(&req("d"), 1),
        Err(SafetyError::TooManySources { max: 3 })
    ));
    // Once their minute has passed, the idle ones make room.
    assert!(env.acquire_at(&req("d"), RATE_WINDOW_MS).is_ok());
    assert_eq!(env.usage_at(RATE_WINDOW_MS).sources, 1);
}

#[test]
fn exact_caps_under_100_racing_acquirers() {
    const RACERS: usize = 100;
    let env = envelope(SafetyLimits {
        max_concurrent: 10,
        max_memory_mb: 1_000_000,
        ..limits()
    });
    let start = Arc::new(Barrier::new(RACERS));
    let hold = Arc::new(Barrier::new(RACERS));
    let handles: Vec<_> = (0..RACERS)
        .map(|i| {
            let (env, start, hold) = (env.clone(), start.clone(), hold.clone());
            std::thread::spawn(move || {
                start.wait();
                let guard = env.acquire_at(&req(&format!("s{i}")).memory_mb(1), 0);
                let won = guard.is_ok();
                // Everyone holds until all have tried.
                hold.wait();
                drop(guard);
                won
            })
        })
        .collect();
    let winners = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|&won| won)
        .count();
    assert_eq!(winners, 10);
    let u = env.usage_at(0);
    assert_eq!((u.concurrent, u.memory_mb), (0, 0));
}

#[test]
fn per_source_cap_under_concurrent_sources() {
    const THREADS: usize = 16;
    const EACH: usize = 100;
    let env = envelope(SafetyLimits {
        per_source_rpm: 50,
        ..limits()
    });
    let start = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (env, start) = (env.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                (0..EACH)
                    .filter(|i| {
                        // Same source, times spread inside one minute.
                        env.acquire_at(&req("shared"), ((t * EACH + i) % 1_000) as u64)
                            .is_ok()
                    })
                    .count()
            })
        })
        .collect();
    let admitted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(admitted, 50);
}

#[test]
fn limits_and_modes_have_a_json_form() {
    let limits: SafetyLimits =
        serde_json::from_str(r#"{"max_concurrent": 5, "burst": 1.5}"#).unwrap();
    assert_eq!(limits.max_concurrent, 5);
    assert_eq!(
        limits.per_source_rpm,
        SafetyLimits::default().per_source_rpm
    );
    let err = serde_json::from_str::<SafetyLimits>(r#"{"max_concurent": 5}"#).unwrap_err();
    assert!(err.to_string().contains("max_concurent"), "{err}");
    let back: SafetyLimits =
        serde_json::from_str(&serde_json::to_string(&limits).unwrap()).unwrap();
    assert_eq!(back, limits);
    assert_eq!(
        serde_json::to_string(&SafetyMode::AuditOnly).unwrap(),
        r#""audit_only""#
    );
}

mod property {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        // Whatever the arrival times and sources, no 60-second interval
        // ever holds more admissions than the global or per-source cap.
        #[test]
        fn never_over_a_cap_in_any_window(
            arrivals in prop::collection::vec((0u64..20_000, 0u8..3), 1..400),
            global in 1u64..30,
            per_source in 1u64..12,
        ) {
            let env = envelope(SafetyLimits {
                global_rpm: global,
                per_source_rpm: per_source,
                ..limits()
            });
            let mut now = 0;
            let mut admitted: Vec<(u64, u8)> = Vec::new();
            for (gap, source) in arrivals {
                now += gap;
                if env.acquire_at(&req(&format!("s{source}")), now).is_ok() {
                    admitted.push((now, source));
                }
            }
            for &(end, _) in &admitted {
                let inside: Vec<u8> = admitted
                    .iter()
                    .filter(|&&(t, _)| t <= end && end - t < RATE_WINDOW_MS)
                    .map(|&(_, s)| s)
                    .collect();
                prop_assert!(inside.len() as u64 <= global);
                for s in 0..3u8 {
                    let n = inside.iter().filter(|&&x| x == s).count() as u64;
                    prop_assert!(n <= per_source, "source {s}: {n} > {per_source}");
                }
            }
        }
    }
}
