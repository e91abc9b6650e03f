//! `net bench`: mesh throughput and latency between this process and a
//! second `net` process (`net mesh up`) on loopback.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::DirBuilderExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use net::mesh::{MeshConfig, MeshNode};
use serde_json::{Value, json};

use crate::error::{CliError, Context, Result};
use crate::mesh::Contact;
use crate::mesh::agent::{Agent, BENCH_STREAM};
use crate::output::{Output, hex, human_bytes};
use crate::redex::progress_bar;

/// Arguments of `net bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Events to send in the throughput run.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    events: u64,
    /// Bytes per event (at most 8108).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=8108))]
    size: u64,
    /// Events per send call.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=4096))]
    batch: u64,
    /// Round trips in the latency run.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pings: u64,
}

/// The peer process, killed however the benchmark ends.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn random_hex32() -> String {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    hex(&bytes)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0)
}

/// Runs the benchmark.
pub fn run(args: &BenchArgs, out: Output) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("net-bench-{}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(&dir)
        .context(format!("creating {}", dir.display()))?;
    let result = bench(args, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    let value = result?;
    out.emit(&value, |out| {
        out.line(format!(
            "throughput  {} events of {} B in {:.3} s: {:.0} events/s, {}/s",
            value["events"],
            value["size"],
            value["seconds"].as_f64().unwrap_or(0.0),
            value["events_per_sec"].as_f64().unwrap_or(0.0),
            human_bytes(value["bytes_per_sec"].as_u64().unwrap_or(0))
        ))?;
        out.line(format!(
            "latency     {} round trips: min {} µs, p50 {} µs, p99 {} µs, max {} µs",
            value["pings"],
            value["rtt_min_us"],
            value["rtt_p50_us"],
            value["rtt_p99_us"],
            value["rtt_max_us"]
        ))
    })
}

fn bench(args: &BenchArgs, dir: &std::path::Path) -> Result<Value> {
    let config_json = format!(r#"{{"bind":"127.0.0.1:0","psk_hex":"{}"}}"#, random_hex32());
    let config_path = dir.join("node.json");
    std::fs::write(&config_path, &config_json).context("writing the peer's configuration")?;
    let exe = std::env::current_exe().context("finding the net executable")?;
    let mut child = Command::new(exe)
        .args([
            "--json",
            "mesh",
            "up",
            "--log-level",
            "warn",
            "--name",
            "bench",
            "--config",
        ])
        .arg(&config_path)
        .arg("--control-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the peer process")?;
    let stdout = child.stdout.take();
    let _peer = Peer(child);
    let mut line = String::new();
    if let Some(stdout) = stdout {
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading the peer's ready line")?;
    }
    let ready: Value = serde_json::from_str(&line)
        .map_err(|_| CliError::new("the peer process exited before it was ready"))?;
    let contact = Contact::parse(ready["contact"].as_str().unwrap_or(""))?;

    let config = MeshConfig::from_json(&config_json).context("configuration")?;
    let agent = Agent::start(MeshNode::new(config).context("starting the local node")?);
    let node = agent.node();
    let result = (|| {
        node.connect(contact.addr, &contact.public_key, contact.node_id)
            .context("connecting to the peer process")?;
        node.open_stream(contact.node_id, BENCH_STREAM, true, None)
            .context("opening the stream")?;
        let payload = vec![0xA5u8; args.size as usize];
        let batch = vec![payload.as_slice(); args.batch as usize];
        let bar = progress_bar(args.events, "sending");
        let started = Instant::now();
        let mut sent = 0u64;
        while sent < args.events {
            let n = args.batch.min(args.events - sent) as usize;
            node.send_blocking(
                contact.node_id,
                BENCH_STREAM,
                &batch[..n],
                Some(Instant::now() + Duration::from_secs(30)),
            )
            .context("sending")?;
            sent += n as u64;
            bar.set_position(sent);
        }
        bar.finish_and_clear();
        let deadline = Instant::now() + Duration::from_secs(60);
        let received = loop {
            let (events, _) = agent.bench_report(contact.node_id, Duration::from_secs(5))?;
            if events >= args.events || Instant::now() > deadline {
                break events;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let seconds = started.elapsed().as_secs_f64();
        if received < args.events {
            return Err(CliError::new(format!(
                "the peer received {received} of {} events",
                args.events
            )));
        }
        let bar = progress_bar(args.pings, "round trips");
        let mut rtts = Vec::with_capacity(args.pings as usize);
        for _ in 0..args.pings {
            rtts.push(
                agent
                    .ping(contact.node_id, Duration::from_secs(5))?
                    .as_micros() as u64,
            );
            bar.inc(1);
        }
        bar.finish_and_clear();
        rtts.sort_unstable();
        Ok(json!({
            "events": args.events,
            "size": args.size,
            "seconds": seconds,
            "events_per_sec": args.events as f64 / seconds,
            "bytes_per_sec": ((args.events * args.size) as f64 / seconds) as u64,
            "pings": args.pings,
            "rtt_min_us": rtts.first(),
            "rtt_p50_us": percentile(&rtts, 0.5),
            "rtt_p99_us": percentile(&rtts, 0.99),
            "rtt_max_us": rtts.last(),
        }))
    })();
    agent.stop();
    result
}
