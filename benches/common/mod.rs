//! Timing helpers shared by the benchmarks that report nanoseconds per call
//! next to a same-run baseline.

use std::time::Instant;

/// Best-of-`rounds` nanoseconds per call of `f`, each round `iters` calls.
pub fn ns_per_call(iters: u64, rounds: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters / 10 {
        f();
    }
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed().as_nanos() as f64 / iters as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// One line: ours (ns and calls/s) vs the baseline, and the ratio.
pub fn row(name: &str, ours: f64, baseline_name: &str, baseline: f64) {
    println!(
        "{name:<34} {ours:>10.1} ns  {:>12.0}/s   vs {baseline_name:<30} {baseline:>10.1} ns   ratio {:.2}",
        1e9 / ours,
        ours / baseline
    );
}
