//! Two-process mesh benchmark: Net streams against Eclipse Zenoh between
//! two OS processes on 127.0.0.1 (issue 19, item 8).
//!
//! One binary. Run without `--role` it is the coordinator: for every
//! round, workload and system (interleaved: net-ff, net-rel, zenoh-tls,
//! zenoh-tcp, net-ff, ...) it spawns itself twice, as `--role receiver`
//! and `--role sender`, lets the sender run through a warm-up, then marks
//! the start and end of the measured interval in both processes (see
//! `child.rs` for the line protocol). It prints medians over the rounds,
//! the ratios Net / Zenoh-TLS, the CPU time per event of each side, and
//! the loss counters.
//!
//! ```text
//! mesh2p [--quick] [--rounds N] [--secs S] [--warmup S]
//!        [--systems net-ff,net-rel,zenoh-tls,zenoh-tcp]
//!        [--workloads 64x1,64x64,1200x1,1200x6,pingpong]
//! ```
//!
//! `--quick`: one round of 0.5 s (after 0.25 s of warm-up). The default is
//! 5 rounds of 3 s after 1 s of warm-up.

mod child;
mod coordinator;
mod net_side;
mod report;
mod workload;
mod zenoh_side;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use coordinator::{Timing, run_once};
use workload::{SYSTEMS, System, WORKLOADS, Workload};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.iter().any(|a| a == "--role") {
        child_main(&args)
    } else {
        coordinator_main(&args)
    };
    if let Err(e) = result {
        if args.iter().any(|a| a == "--role") {
            child::emit(&serde_json::json!({ "error": e }));
        }
        eprintln!("mesh2p: {e}");
        std::process::exit(1);
    }
}

/// The value after `--name`, if given.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn secs(args: &[String], name: &str, default: f64) -> Result<Duration, String> {
    match flag(args, name) {
        None => Ok(Duration::from_secs_f64(default)),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("{name}: expected seconds, got {v:?}")),
    }
}

fn child_main(args: &[String]) -> Result<(), String> {
    let role = flag(args, "--role").ok_or("--role needs a value")?;
    let system = flag(args, "--system")
        .and_then(System::parse)
        .ok_or("--system: net-ff, net-rel, zenoh-tls or zenoh-tcp")?;
    let workload = flag(args, "--workload")
        .and_then(Workload::parse)
        .ok_or("--workload: 64x1, 64x64, 1200x1, 1200x6 or pingpong")?;
    let certs = flag(args, "--certs").map(PathBuf::from);
    if !system.is_net() {
        // Zenoh's own log, to stderr through the coordinator, when RUST_LOG
        // asks for it (e.g. RUST_LOG=zenoh=warn).
        zenoh::try_init_log_from_env();
    }
    let control = child::start_control();
    let done = match (role, system.is_net()) {
        ("receiver", true) => net_side::receiver(system, workload, control)?,
        ("receiver", false) => zenoh_side::receiver(system, workload, certs.as_deref(), control)?,
        ("sender", is_net) => {
            let peer = flag(args, "--peer").ok_or("a sender needs --peer")?;
            if is_net {
                net_side::sender(system, workload, peer, control)?
            } else {
                zenoh_side::sender(workload, peer, certs.as_deref(), control)?
            }
        }
        _ => return Err(format!("--role: receiver or sender, not {role:?}")),
    };
    child::emit(&serde_json::json!({ "done": done }));
    Ok(())
}

/// Parses a comma-separated selection of `all` by name.
fn pick<T: Copy>(
    args: &[String],
    name: &str,
    all: &[T],
    parse: fn(&str) -> Option<T>,
) -> Result<Vec<T>, String> {
    match flag(args, name) {
        None => Ok(all.to_vec()),
        Some(list) => list
            .split(',')
            .map(|n| parse(n).ok_or_else(|| format!("{name}: unknown {n:?}")))
            .collect(),
    }
}

fn coordinator_main(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let rounds = match flag(args, "--rounds") {
        Some(n) => n.parse().map_err(|_| format!("--rounds: {n:?}"))?,
        None if quick => 1,
        None => 5,
    };
    let timing = Timing {
        warmup: secs(args, "--warmup", if quick { 0.25 } else { 1.0 })?,
        interval: secs(args, "--secs", if quick { 0.5 } else { 3.0 })?,
    };
    let systems = pick(args, "--systems", &SYSTEMS, System::parse)?;
    let workloads = pick(args, "--workloads", &WORKLOADS, Workload::parse)?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let certs = zenoh_side::Certs::generate(coordinator::temp_dir())?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "mesh2p: two processes on 127.0.0.1, {rounds} round(s), {:?} warm-up + {:?} measured per run; load average at start {}",
        timing.warmup,
        timing.interval,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let started = Instant::now();
    let mut results = report::Results::new(&workloads, &systems);
    for round in 1..=rounds {
        for &workload in &workloads {
            for &system in &systems {
                let run = run_once(&exe, system, workload, timing, Some(certs.dir()));
                print_progress(round, rounds, workload, system, &run);
                results.push(workload, system, run);
            }
        }
    }
    report::print(&results, rounds);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\nmesh2p: {:.0} s in all; load average at end {}",
        started.elapsed().as_secs_f64(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}

fn print_progress(
    round: usize,
    rounds: usize,
    workload: Workload,
    system: System,
    run: &Result<coordinator::RunResult, String>,
) {
    let what = match run {
        Err(e) => format!("FAILED: {e}"),
        Ok(r) => match workload {
            Workload::PingPong => format!(
                "rtt p50 {:.0} µs p99 {:.0} µs ({:.0} round trips/s)",
                r.rtt_p50_us, r.rtt_p99_us, r.rate
            ),
            Workload::Stream { .. } => format!(
                "{:.0} events/s, cpu {:.2} + {:.2} µs/event, unreceived {}, inbound_dropped {}, retransmits {}",
                r.rate,
                r.send_cpu_us,
                r.recv_cpu_us,
                r.unreceived,
                r.inbound_dropped,
                r.retransmits
            ),
        },
    };
    println!(
        "round {round}/{rounds}  {:<8} {:<10} {what}",
        workload.name(),
        system.name()
    );
}
