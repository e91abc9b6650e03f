//! `cargo bench --bench behavior`: the behavior plane's hot paths next to
//! baselines measured in the same run (ratio = ours / baseline time).
//!
//! - Rule evaluation over a 100-rule set (issue 16 target ≥ 1 M contexts/s),
//!   against evaluating the same 100 comparisons by hand on the context.
//! - Safety acquire + release, uncontended (target ≥ 5 M/s) and with 4
//!   threads, against a bare mutex lock/unlock pair.
//! - Power-of-two-choices selection over 1 000 endpoints (target ≥ 10 M/s),
//!   against drawing two random indices.
//!
//! Under `cargo test` (no `--bench` argument) it runs a short smoke pass:
//! 1/100 of the iterations, figures meaningless.

mod common;
use common::{ns_per_call, row};

use std::hint::black_box;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Instant;

use net::behavior::loadbalance::{Endpoint, LbConfig, LoadBalancer, RequestContext, Strategy};
use net::behavior::rules::{Action, Expr, Op, Rule, RuleEngine};
use net::behavior::safety::{SafetyConfig, SafetyEnvelope, SafetyLimits, SafetyRequest};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// `n` iterations under `cargo bench`, n / 100 in the smoke pass.
fn iters(n: u64) -> u64 {
    if std::env::args().any(|a| a == "--bench") {
        n
    } else {
        (n / 100).max(10)
    }
}

fn rules() {
    let engine = RuleEngine::new();
    for i in 0..100u64 {
        // Mostly non-matching numeric and string conditions, two that fire.
        let cond = match i % 4 {
            0 => Expr::cond("req.size", Op::Gt, json!(1_000_000 + i)),
            1 => Expr::cond("req.user.tier", Op::Eq, json!(format!("tier-{i}"))),
            2 => Expr::cond("req.latency_ms", Op::Lt, json!(i as f64 / 100.0)),
            _ => Expr::cond("req.region", Op::In, json!(["mars", "venus"])),
        }
        .unwrap();
        engine
            .add(Rule::new(format!("r{i}"), cond, Action::Noop))
            .unwrap();
    }
    engine
        .add(Rule::new(
            "hit-1",
            Expr::cond("req.size", Op::Ge, json!(10)).unwrap(),
            Action::Noop,
        ))
        .unwrap();
    let ctx = json!({"req": {"size": 4096, "user": {"tier": "free"}, "latency_ms": 12.5, "region": "eu"}});
    let ours = ns_per_call(iters(20_000), 5, || {
        black_box(engine.evaluate(black_box(&ctx), 0));
    });
    let baseline = ns_per_call(iters(20_000), 5, || {
        let req = &black_box(&ctx)["req"];
        let mut hits = 0;
        for i in 0..100u64 {
            hits += match i % 4 {
                0 => (req["size"].as_u64().unwrap_or(0) > 1_000_000 + i) as u32,
                1 => (req["user"]["tier"].as_str() == Some("tier")) as u32,
                2 => (req["latency_ms"].as_f64().unwrap_or(0.0) < i as f64 / 100.0) as u32,
                _ => matches!(req["region"].as_str(), Some("mars" | "venus")) as u32,
            };
        }
        black_box(hits);
    });
    row(
        "rules: evaluate 100 rules",
        ours,
        "hand-written 100 comparisons",
        baseline,
    );
}

fn safety() {
    let env = SafetyEnvelope::new(SafetyConfig {
        limits: SafetyLimits {
            global_rpm: u64::MAX,
            per_source_rpm: u64::MAX,
            ..SafetyLimits::default()
        },
        ..SafetyConfig::default()
    });
    let req = SafetyRequest::new("bench").tokens(10).memory_mb(1);
    let ours = ns_per_call(iters(200_000), 5, || {
        drop(black_box(env.acquire_at(black_box(&req), 0)));
    });
    let lock = Mutex::new(0u64);
    let baseline = ns_per_call(iters(200_000), 5, || {
        *lock.lock().unwrap() += 1;
        *lock.lock().unwrap() -= 1;
    });
    row(
        "safety: acquire + release",
        ours,
        "two mutex lock/unlock",
        baseline,
    );

    const THREADS: usize = 4;
    let each = iters(200_000);
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (env, barrier) = (env.clone(), barrier.clone());
            std::thread::spawn(move || {
                let req = SafetyRequest::new(format!("bench-{t}")).tokens(10);
                barrier.wait();
                for _ in 0..each {
                    drop(black_box(env.acquire_at(&req, 0)));
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().unwrap();
    }
    let ns = start.elapsed().as_nanos() as f64 / (THREADS as u64 * each) as f64;
    row(
        "safety: acquire + release, 4 thr",
        ns,
        "same, uncontended",
        ours,
    );
}

fn p2c() {
    let lb = LoadBalancer::new(LbConfig {
        strategy: Strategy::PowerOfTwo,
        seed: Some(1),
        ..LbConfig::default()
    });
    for i in 0..1_000u32 {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&i.to_le_bytes());
        lb.add(Endpoint::new(id)).unwrap();
    }
    let ctx = RequestContext::default();
    let ours = ns_per_call(iters(500_000), 5, || {
        drop(black_box(lb.select_at(black_box(&ctx), 0)));
    });
    let mut rng = SmallRng::seed_from_u64(1);
    let baseline = ns_per_call(iters(500_000), 5, || {
        black_box((rng.gen_range(0..1_000usize), rng.gen_range(0..999usize)));
    });
    row(
        "lb: P2C select over 1 000",
        ours,
        "two random indices",
        baseline,
    );
}

fn main() {
    rules();
    safety();
    p2c();
}
