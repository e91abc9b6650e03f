//! Load-balancer tests: each strategy, distributions, zones, tags,
//! circuits, and slots that can never leak.

use std::collections::HashMap;

use super::*;

fn id(n: u8) -> EndpointId {
    let mut id = [0u8; 32];
    id[0] = n;
    id
}

fn balancer(strategy: Strategy, n: u8) -> LoadBalancer {
    let lb = LoadBalancer::new(LbConfig {
        strategy,
        seed: Some(7),
        ..LbConfig::default()
    });
    for i in 0..n {
        lb.add(Endpoint::new(id(i))).unwrap();
    }
    lb
}

fn ctx() -> RequestContext {
    RequestContext::default()
}

fn keyed(key: &str) -> RequestContext {
    RequestContext {
        routing_key: Some(key.into()),
        ..RequestContext::default()
    }
}

/// Picks `n` times at time 0 (each selection dropped at once); counts per
/// endpoint.
fn tally(lb: &LoadBalancer, n: usize, ctx: &RequestContext) -> HashMap<u8, usize> {
    tally_with(lb, n, ctx, 0)
}

fn tally_at(lb: &LoadBalancer, n: usize, now: u64) -> HashMap<u8, usize> {
    tally_with(lb, n, &RequestContext::default(), now)
}

fn tally_with(lb: &LoadBalancer, n: usize, ctx: &RequestContext, now: u64) -> HashMap<u8, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        let s = lb.select_at(ctx, now).unwrap();
        *counts.entry(s.id()[0]).or_default() += 1;
    }
    counts
}

/// Pearson's chi-square of `counts` against a uniform spread over `k`.
fn chi_square(counts: &HashMap<u8, usize>, k: usize, n: usize) -> f64 {
    let expected = n as f64 / k as f64;
    (0..k as u8)
        .map(|i| {
            let o = *counts.get(&i).unwrap_or(&0) as f64;
            (o - expected).powi(2) / expected
        })
        .sum()
}

#[test]
fn round_robin_cycles_in_insertion_order() {
    let lb = balancer(Strategy::RoundRobin, 3);
    let order: Vec<u8> = (0..6)
        .map(|_| lb.select_at(&ctx(), 0).unwrap().id()[0])
        .collect();
    assert_eq!(order, [0, 1, 2, 0, 1, 2]);
}

#[test]
fn slots_never_leak_after_20000_selections() {
    // §8 item 7: v0.11 never picks a member again after 10 000 routes.
    for strategy in [
        Strategy::RoundRobin,
        Strategy::PowerOfTwo,
        Strategy::LeastConnections,
    ] {
        let lb = balancer(strategy, 3);
        for i in 0..20_000u64 {
            let s = lb.select_at(&ctx(), 0).unwrap();
            if i % 2 == 0 {
                s.complete(true, 0);
            } // else: dropped
        }
        for n in 0..3 {
            assert_eq!(lb.connections(&id(n)).unwrap(), 0, "{strategy:?}");
        }
        // Every endpoint still takes traffic (held, so least-connections
        // spreads too).
        let held: Vec<Selection> = (0..30).map(|_| lb.select_at(&ctx(), 0).unwrap()).collect();
        let seen: std::collections::HashSet<u8> = held.iter().map(|s| s.id()[0]).collect();
        assert_eq!(seen.len(), 3, "{strategy:?}: {seen:?}");
    }
}

#[test]
fn held_selections_count_and_cap_connections() {
    let lb = LoadBalancer::new(LbConfig {
        max_connections: 2,
        ..LbConfig::default()
    });
    lb.add(Endpoint::new(id(0))).unwrap();
    let a = lb.select_at(&ctx(), 0).unwrap();
    let b = lb.select_at(&ctx(), 0).unwrap();
    assert_eq!(lb.connections(&id(0)).unwrap(), 2);
    assert_eq!(
        lb.select_at(&ctx(), 0).unwrap_err(),
        LbError::NoHealthyEndpoint
    );
    drop(a);
    b.complete(false, 0);
    assert_eq!(lb.connections(&id(0)).unwrap(), 0);
    assert!(lb.select_at(&ctx(), 0).is_ok());
}

#[test]
fn weighted_round_robin_follows_weights() {
    let lb = LoadBalancer::new(LbConfig {
        strategy: Strategy::WeightedRoundRobin,
        ..LbConfig::default()
    });
    lb.add(Endpoint::new(id(0)).with_weight(100)).unwrap();
    lb.add(Endpoint::new(id(1)).with_weight(300)).unwrap();
    let counts = tally(&lb, 4_000, &ctx());
    assert_eq!(counts[&0], 1_000);
    assert_eq!(counts[&1], 3_000);
    // Degraded halves the share.
    lb.set_health(&id(1), Health::Degraded).unwrap();
    let counts = tally(&lb, 2_500, &ctx());
    assert_eq!(counts[&0], 1_000);
    assert_eq!(counts[&1], 1_500);
}

#[test]
fn least_connections_and_weighted() {
    let lb = balancer(Strategy::LeastConnections, 3);
    let a = lb.select_at(&ctx(), 0).unwrap();
    let b = lb.select_at(&ctx(), 0).unwrap();
    assert_ne!(a.id(), b.id());
    let c = lb.select_at(&ctx(), 0).unwrap();
    assert_eq!(
        [a.id()[0], b.id()[0], c.id()[0]]
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        3
    );
    drop(b);
    let d = lb.select_at(&ctx(), 0).unwrap();
    assert_eq!(d.id(), id(1));

    let lb = LoadBalancer::new(LbConfig {
        strategy: Strategy::WeightedLeastConnections,
        ..LbConfig::default()
    });
    lb.add(Endpoint::new(id(0)).with_weight(100)).unwrap();
    lb.add(Endpoint::new(id(1)).with_weight(300)).unwrap();
    let held: Vec<Selection> = (0..8).map(|_| lb.select_at(&ctx(), 0).unwrap()).collect();
    assert_eq!(lb.connections(&id(0)).unwrap(), 2);
    assert_eq!(lb.connections(&id(1)).unwrap(), 6);
    drop(held);
}

#[test]
fn random_is_uniform() {
    let lb = balancer(Strategy::Random, 10);
    let n = 20_000;
    let counts = tally(&lb, n, &ctx());
    // df = 9: P(chi² > 40) ≈ 7e-6.
    let chi = chi_square(&counts, 10, n);
    assert!(chi < 40.0, "chi² = {chi}: {counts:?}");
}

#[test]
fn power_of_two_is_uniform_when_idle_and_avoids_load() {
    let lb = balancer(Strategy::PowerOfTwo, 10);
    let n = 20_000;
    let counts = tally(&lb, n, &ctx());
    let chi = chi_square(&counts, 10, n);
    assert!(chi < 40.0, "chi² = {chi}: {counts:?}");
    // Load one endpoint: it loses every pair it is drawn in, so it is
    // never picked while the others are idle.
    let held = loop {
        let s = lb.select_at(&ctx(), 0).unwrap();
        if s.id()[0] == 0 {
            break s;
        }
    };
    let counts = tally(&lb, 2_000, &ctx());
    assert!(!counts.contains_key(&0), "{counts:?}");
    drop(held);
}

#[test]
fn weighted_random_follows_weights() {
    let lb = LoadBalancer::new(LbConfig {
        strategy: Strategy::WeightedRandom,
        seed: Some(3),
        ..LbConfig::default()
    });
    for (i, w) in [(0, 100), (1, 200), (2, 700)] {
        lb.add(Endpoint::new(id(i)).with_weight(w)).unwrap();
    }
    let n = 20_000;
    let counts = tally(&lb, n, &ctx());
    for (i, share) in [(0u8, 0.1), (1, 0.2), (2, 0.7)] {
        let got = counts[&i] as f64 / n as f64;
        assert!((got - share).abs() < 0.02, "endpoint {i}: {got} vs {share}");
    }
}

#[test]
fn consistent_hash_is_stable_and_moves_only_the_lost_keys() {
    let lb = balancer(Strategy::ConsistentHash, 5);
    let keys: Vec<String> = (0..500).map(|k| format!("user-{k}")).collect();
    let first: Vec<u8> = keys
        .iter()
        .map(|k| lb.select_at(&keyed(k), 0).unwrap().id()[0])
        .collect();
    let again: Vec<u8> = keys
        .iter()
        .map(|k| lb.select_at(&keyed(k), 0).unwrap().id()[0])
        .collect();
    assert_eq!(first, again);
    let spread: std::collections::HashSet<u8> = first.iter().copied().collect();
    assert_eq!(spread.len(), 5);
    // Take endpoint 2 out: only its keys move.
    lb.set_health(&id(2), Health::Unhealthy).unwrap();
    for (k, before) in keys.iter().zip(&first) {
        let now = lb.select_at(&keyed(k), 0).unwrap().id()[0];
        if *before != 2 {
            assert_eq!(now, *before, "{k} moved");
        } else {
            assert_ne!(now, 2);
        }
    }
    // The ring is a function of the id bytes: a fresh balancer agrees.
    let other = balancer(Strategy::ConsistentHash, 5);
    for (k, before) in keys.iter().zip(&first) {
        assert_eq!(other.select_at(&keyed(k), 0).unwrap().id()[0], *before);
    }
    // No key: round robin.
    let order: Vec<u8> = (0..4)
        .map(|_| other.select_at(&ctx(), 0).unwrap().id()[0])
        .collect();
    assert_eq!(order, [0, 1, 2, 3]);
}

#[test]
fn least_latency_and_least_load() {
    let lb = balancer(Strategy::LeastLatency, 3);
    for (i, ms) in [(0, 50.0), (1, 5.0), (2, 20.0)] {
        lb.update_metrics(
            &id(i),
            EndpointMetrics {
                response_ms: ms,
                ..EndpointMetrics::default()
            },
        )
        .unwrap();
    }
    assert_eq!(lb.select_at(&ctx(), 0).unwrap().id(), id(1));

    let lb = balancer(Strategy::LeastLoad, 3);
    lb.update_metrics(
        &id(0),
        EndpointMetrics {
            cpu: 0.9,
            ..EndpointMetrics::default()
        },
    )
    .unwrap();
    lb.update_metrics(
        &id(1),
        EndpointMetrics {
            memory: 0.5,
            ..EndpointMetrics::default()
        },
    )
    .unwrap();
    lb.update_metrics(
        &id(2),
        EndpointMetrics {
            error_rate: 0.9,
            ..EndpointMetrics::default()
        },
    )
    .unwrap();
    assert_eq!(lb.select_at(&ctx(), 0).unwrap().id(), id(1));
    let m = EndpointMetrics {
        cpu: 1.0,
        memory: 1.0,
        response_ms: 5_000.0,
        error_rate: 1.0,
    };
    assert!((load_score(&m, 50_000) - 1.0).abs() < 1e-12);
}

#[test]
fn adaptive_switches_on_load_and_keys() {
    let lb = balancer(Strategy::Adaptive, 3);
    // Low load, no key: weighted round robin (equal weights: in turn).
    let order: Vec<u8> = (0..3)
        .map(|_| lb.select_at(&ctx(), 0).unwrap().id()[0])
        .collect();
    assert_eq!(order, [0, 1, 2]);
    // Keyed: consistent.
    let k = lb.select_at(&keyed("k"), 0).unwrap().id();
    assert_eq!(lb.select_at(&keyed("k"), 0).unwrap().id(), k);
    // High load: least connections.
    let hot = EndpointMetrics {
        cpu: 1.0,
        memory: 1.0,
        response_ms: 1_000.0,
        error_rate: 1.0,
    };
    for i in 0..3 {
        lb.update_metrics(&id(i), hot).unwrap();
    }
    let a = lb.select_at(&keyed("k"), 0).unwrap();
    let b = lb.select_at(&keyed("k"), 0).unwrap();
    assert_ne!(a.id(), b.id(), "least connections spreads even a fixed key");
}

#[test]
fn health_enabled_and_tags_filter() {
    let lb = LoadBalancer::new(LbConfig::default());
    lb.add(Endpoint::new(id(0)).with_tag("gpu")).unwrap();
    lb.add(Endpoint::new(id(1))).unwrap();
    lb.add(Endpoint {
        health: Health::Unknown,
        ..Endpoint::new(id(2))
    })
    .unwrap();
    let gpu = RequestContext {
        required_tags: vec!["gpu".into()],
        ..ctx()
    };
    for _ in 0..5 {
        assert_eq!(lb.select_at(&gpu, 0).unwrap().id(), id(0));
    }
    let seen = tally(&lb, 10, &ctx());
    assert!(!seen.contains_key(&2), "Unknown gets no traffic");
    lb.set_enabled(&id(0), false).unwrap();
    assert_eq!(
        lb.select_at(&gpu, 0).unwrap_err(),
        LbError::NoHealthyEndpoint
    );
    assert_eq!(
        lb.add(Endpoint::new(id(1))),
        Err(LbError::DuplicateEndpoint)
    );
    assert_eq!(
        lb.set_health(&id(9), Health::Healthy),
        Err(LbError::UnknownEndpoint)
    );
    lb.remove(&id(1)).unwrap();
    lb.remove(&id(0)).unwrap();
    assert_eq!(
        lb.select_at(&ctx(), 0).unwrap_err(),
        LbError::NoHealthyEndpoint
    );
    lb.remove(&id(2)).unwrap();
    assert_eq!(lb.select_at(&ctx(), 0).unwrap_err(), LbError::NoEndpoints);
}

#[test]
fn zone_awareness_with_and_without_fallback() {
    let zoned = |fallback: bool| {
        let lb = LoadBalancer::new(LbConfig {
            zone_fallback: fallback,
            local_zone: Some("eu".into()),
            ..LbConfig::default()
        });
        lb.add(Endpoint::new(id(0)).in_zone("us")).unwrap();
        lb.add(Endpoint::new(id(1)).in_zone("eu")).unwrap();
        lb.add(Endpoint::new(id(2)).in_zone("eu")).unwrap();
        lb
    };
    let lb = zoned(true);
    let seen = tally(&lb, 10, &ctx());
    assert!(!seen.contains_key(&0));
    let us = RequestContext {
        zone: Some("us".into()),
        ..ctx()
    };
    assert_eq!(lb.select_at(&us, 0).unwrap().id(), id(0));
    let ap = RequestContext {
        zone: Some("ap".into()),
        ..ctx()
    };
    assert_eq!(tally(&lb, 9, &ap).len(), 3, "fallback uses every zone");
    let lb = zoned(false);
    assert_eq!(
        lb.select_at(&ap, 0).unwrap_err(),
        LbError::NoEndpointInZone("ap".into())
    );
    lb.set_health(&id(1), Health::Unhealthy).unwrap();
    lb.set_health(&id(2), Health::Unhealthy).unwrap();
    assert_eq!(
        lb.select_at(&ctx(), 0).unwrap_err(),
        LbError::NoEndpointInZone("eu".into())
    );
}

#[test]
fn circuit_opens_probes_once_and_closes() {
    let lb = balancer(Strategy::RoundRobin, 2);
    let fail_on = |target: u8, now: u64| loop {
        let s = lb.select_at(&ctx(), now).unwrap();
        if s.id()[0] == target {
            s.complete(false, now);
            return;
        }
    };
    for _ in 0..4 {
        fail_on(0, 1_000);
    }
    assert!(!lb.circuit_open(&id(0)).unwrap());
    // A success in between resets the count.
    let mut reset = false;
    while !reset {
        let s = lb.select_at(&ctx(), 1_000).unwrap();
        reset = s.id()[0] == 0;
        s.complete(true, 1_000);
    }
    for _ in 0..5 {
        fail_on(0, 1_000);
    }
    assert!(lb.circuit_open(&id(0)).unwrap());
    // Open: no traffic until the recovery time.
    assert!(!tally_at(&lb, 10, 30_999).contains_key(&0));
    // Then exactly one probe at a time.
    let probe = loop {
        let s = lb.select_at(&ctx(), 31_000).unwrap();
        if s.id()[0] == 0 {
            break s;
        }
    };
    assert!(probe.is_probe());
    assert!(
        !tally_at(&lb, 10, 31_000).contains_key(&0),
        "one probe slot"
    );
    // A failed probe re-arms from now.
    probe.complete(false, 31_000);
    assert!(!tally_at(&lb, 10, 60_999).contains_key(&0));
    let probe = loop {
        let s = lb.select_at(&ctx(), 61_000).unwrap();
        if s.id()[0] == 0 {
            break s;
        }
    };
    // A dropped probe frees the slot without deciding anything.
    drop(probe);
    assert!(lb.circuit_open(&id(0)).unwrap());
    let probe = loop {
        let s = lb.select_at(&ctx(), 61_000).unwrap();
        if s.id()[0] == 0 {
            break s;
        }
    };
    probe.complete(true, 61_000);
    assert!(!lb.circuit_open(&id(0)).unwrap());
    assert_eq!(tally_at(&lb, 10, 61_000).len(), 2);
}

#[test]
fn concurrent_selection_respects_max_connections() {
    use std::sync::{Arc, Barrier};
    let lb = Arc::new(LoadBalancer::new(LbConfig {
        strategy: Strategy::PowerOfTwo,
        max_connections: 5,
        ..LbConfig::default()
    }));
    for i in 0..4 {
        lb.add(Endpoint::new(id(i))).unwrap();
    }
    let start = Arc::new(Barrier::new(40));
    let hold = Arc::new(Barrier::new(40));
    let handles: Vec<_> = (0..40)
        .map(|_| {
            let (lb, start, hold) = (lb.clone(), start.clone(), hold.clone());
            std::thread::spawn(move || {
                start.wait();
                let s = lb.select_at(&RequestContext::default(), 0);
                let ok = s.is_ok();
                hold.wait();
                drop(s);
                ok
            })
        })
        .collect();
    let won = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|&w| w)
        .count();
    assert!(won <= 20, "{won} > 4 × 5");
    for i in 0..4 {
        assert_eq!(lb.connections(&id(i)).unwrap(), 0);
    }
}

#[test]
fn sampled_picks_skip_ineligible_and_stay_uniform() {
    for strategy in [Strategy::Random, Strategy::PowerOfTwo] {
        let lb = balancer(strategy, 10);
        for i in [1u8, 4, 7] {
            lb.set_health(&id(i), Health::Unhealthy).unwrap();
        }
        lb.set_enabled(&id(9), false).unwrap();
        let n = 12_000;
        let counts = tally(&lb, n, &ctx());
        for i in [1u8, 4, 7, 9] {
            assert!(!counts.contains_key(&i), "{strategy:?} picked {i}");
        }
        // Uniform over the six eligible: relabel and test.
        let relabelled: HashMap<u8, usize> = counts
            .values()
            .enumerate()
            .map(|(k, &c)| (k as u8, c))
            .collect();
        assert_eq!(relabelled.len(), 6);
        let chi = chi_square(&relabelled, 6, n);
        // df = 5: P(chi² > 35) ≈ 1.5e-6.
        assert!(chi < 35.0, "{strategy:?}: chi² = {chi}: {counts:?}");
    }
}

#[test]
fn config_has_a_json_form() {
    let cfg: LbConfig =
        serde_json::from_str(r#"{"strategy": "power_of_two", "zone_fallback": false}"#).unwrap();
    assert_eq!(cfg.strategy, Strategy::PowerOfTwo);
    assert!(!cfg.zone_fallback);
    assert_eq!(cfg.ring_points, 150);
    let err = serde_json::from_str::<LbConfig>(r#"{"stratgy": "random"}"#).unwrap_err();
    assert!(err.to_string().contains("stratgy"), "{err}");
}
