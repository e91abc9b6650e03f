//! Medians over rounds and the printed tables (Markdown, ready for
//! docs/BENCHMARKS.md).

use crate::coordinator::RunResult;
use crate::workload::{System, Workload};

/// One run's outcome: its figures, or why it failed.
pub type Run = Result<RunResult, String>;

/// Every run of the benchmark, by workload and system.
pub struct Results {
    workloads: Vec<Workload>,
    systems: Vec<System>,
    /// `[workload][system]`, indexes into the two lists above.
    cells: Vec<Vec<Vec<Run>>>,
}

/// One figure taken from a run.
type Field = fn(&RunResult) -> f64;
/// How a figure is printed.
type Format = fn(f64) -> String;

impl Results {
    /// Room for the runs of these workloads and systems.
    pub fn new(workloads: &[Workload], systems: &[System]) -> Self {
        Self {
            workloads: workloads.to_vec(),
            systems: systems.to_vec(),
            cells: vec![vec![Vec::new(); systems.len()]; workloads.len()],
        }
    }

    /// Records one run.
    pub fn push(&mut self, workload: Workload, system: System, run: Run) {
        let w = self.workloads.iter().position(|&x| x == workload);
        let s = self.systems.iter().position(|&x| x == system);
        if let (Some(w), Some(s)) = (w, s) {
            self.cells[w][s].push(run);
        }
    }

    fn runs(&self, workload: Workload, system: System) -> &[Run] {
        let w = self.workloads.iter().position(|&x| x == workload);
        let s = self.systems.iter().position(|&x| x == system);
        match (w, s) {
            (Some(w), Some(s)) => &self.cells[w][s],
            _ => &[],
        }
    }

    fn ok(&self, workload: Workload, system: System) -> impl Iterator<Item = &RunResult> {
        self.runs(workload, system)
            .iter()
            .filter_map(|r| r.as_ref().ok())
    }

    fn values(&self, workload: Workload, system: System, field: Field) -> Vec<f64> {
        self.ok(workload, system).map(field).collect()
    }

    fn median(&self, workload: Workload, system: System, field: Field) -> f64 {
        median(&self.values(workload, system, field))
    }

    fn failures(&self, workload: Workload, system: System) -> usize {
        self.runs(workload, system)
            .iter()
            .filter(|r| r.is_err())
            .count()
    }

    /// A median with its spread over rounds, and how many runs failed.
    fn cell(
        &self,
        workload: Workload,
        system: System,
        field: Field,
        fmt: Format,
        spread: Format,
    ) -> String {
        let values = self.values(workload, system, field);
        let mut text = fmt(median(&values));
        if values.len() > 1 {
            let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            text.push_str(&format!(" ({}–{})", spread(lo), spread(hi)));
        }
        let failures = self.failures(workload, system);
        if failures > 0 {
            text.push_str(&format!(" [{failures} failed]"));
        }
        text
    }

    /// The Net / Zenoh-TLS ratio columns that apply to this selection.
    fn ratio_columns(&self) -> Vec<System> {
        if !self.systems.contains(&System::ZenohTls) {
            return Vec::new();
        }
        self.systems
            .iter()
            .copied()
            .filter(|s| s.is_net())
            .collect()
    }

    fn row(&self, label: &str, cells: Vec<String>, ratio_of: impl Fn(System) -> f64) {
        let ratios: Vec<String> = self
            .ratio_columns()
            .into_iter()
            .map(|s| ratio(ratio_of(s), ratio_of(System::ZenohTls)))
            .collect();
        let mut columns = cells;
        columns.extend(ratios);
        println!("| {label} | {} |", columns.join(" | "));
    }
}

/// The median (mean of the middle two for an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn rate(x: f64) -> String {
    if !x.is_finite() {
        "—".to_string()
    } else if x >= 1e6 {
        format!("{:.2} M/s", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.0} k/s", x / 1e3)
    } else {
        format!("{x:.0}/s")
    }
}

fn short_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else {
        format!("{:.0} k", x / 1e3)
    }
}

fn micros(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.0} µs")
    } else {
        "—".to_string()
    }
}

fn short_micros(x: f64) -> String {
    format!("{x:.0}")
}

fn ratio(ours: f64, theirs: f64) -> String {
    if ours.is_finite() && theirs.is_finite() && theirs > 0.0 {
        format!("{:.2}", ours / theirs)
    } else {
        "—".to_string()
    }
}

/// The main table (rates, round trips, CPU per event, with the ratios Net /
/// Zenoh-TLS), then the loss counters.
pub fn print(results: &Results, rounds: usize) {
    println!();
    println!(
        "Medians over {rounds} round(s), min–max in brackets. Ratio = Net / Zenoh-TLS: for throughput above 1 means Net is faster; for round trip and CPU per event below 1 means Net is faster."
    );
    println!();
    let mut header: Vec<String> = results
        .systems
        .iter()
        .map(|s| s.name().to_string())
        .collect();
    header.extend(
        results
            .ratio_columns()
            .iter()
            .map(|s| format!("{} / tls", s.name())),
    );
    println!("| Workload | {} |", header.join(" | "));
    println!("|---|{}", "---:|".repeat(header.len()));
    for &workload in &results.workloads {
        let rows: Vec<(String, Field, Format, Format)> = match workload {
            Workload::Stream { .. } => vec![(
                format!("{}: events/s received", workload.label()),
                |r| r.rate,
                rate,
                short_rate,
            )],
            Workload::PingPong => vec![
                (
                    format!("{}: median", workload.label()),
                    |r| r.rtt_p50_us,
                    micros,
                    short_micros,
                ),
                (
                    format!("{}: p99", workload.label()),
                    |r| r.rtt_p99_us,
                    micros,
                    short_micros,
                ),
            ],
        };
        for (label, field, fmt, spread) in rows {
            let cells = results
                .systems
                .iter()
                .map(|&s| results.cell(workload, s, field, fmt, spread))
                .collect();
            results.row(&label, cells, |s| results.median(workload, s, field));
        }
    }
    for &workload in &results.workloads {
        if !matches!(workload, Workload::Stream { per_call: 1, .. }) {
            continue;
        }
        let send = |s| results.median(workload, s, |r| r.send_cpu_us);
        let recv = |s| results.median(workload, s, |r| r.recv_cpu_us);
        let cells = results
            .systems
            .iter()
            .map(|&s| {
                if send(s).is_finite() {
                    format!("{:.2} + {:.2} µs", send(s), recv(s))
                } else {
                    "—".to_string()
                }
            })
            .collect();
        results.row(
            &format!("{}: CPU per event, sender + receiver", workload.label()),
            cells,
            |s| send(s) + recv(s),
        );
    }
    print_losses(results);
}

/// Loss and stall counters, summed over rounds.
fn print_losses(results: &Results) {
    println!();
    println!(
        "Summed over rounds, per system: Net receiver inbound_dropped / Net sender send_dropped / Net sender retransmits / events sent but never received (the receiver counts, the sender still connected, until it has them all or its count stalls for 1 s) / send_blocking calls that timed out (1 s) / pings without a pong (500 ms)."
    );
    println!();
    let names: Vec<&str> = results.systems.iter().map(|s| s.name()).collect();
    println!("| Workload | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    for &workload in &results.workloads {
        let cells: Vec<String> = results
            .systems
            .iter()
            .map(|&s| {
                let sum = |f: fn(&RunResult) -> i64| results.ok(workload, s).map(f).sum::<i64>();
                let unreceived = sum(|r| r.unreceived);
                let missing = sum(|r| r.pong_timeouts as i64);
                if s.is_net() {
                    format!(
                        "{} / {} / {} / {unreceived} / {} / {missing}",
                        sum(|r| r.inbound_dropped as i64),
                        sum(|r| r.send_dropped as i64),
                        sum(|r| r.retransmits as i64),
                        sum(|r| r.send_timeouts as i64),
                    )
                } else {
                    format!("– / – / – / {unreceived} / – / {missing}")
                }
            })
            .collect();
        println!("| {} | {} |", workload.label(), cells.join(" | "));
    }
    for &workload in &results.workloads {
        for &system in &results.systems {
            for run in results.runs(workload, system) {
                if let Err(error) = run {
                    println!("failed: {} {}: {error}", workload.name(), system.name());
                }
            }
        }
    }
}
