//! The coordinator: spawns a receiver and a sender process per run, drives
//! them through warm-up and the measured interval, and gathers what they
//! report.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::workload::{System, Workload};

/// How long a child may take to set up (zenoh's TLS session, Net's
/// handshake) or to answer a command.
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);
/// After `stop`, the receiver is polled every `DRAIN_STEP` until it has
/// counted all the sender sent, or its count has not moved for
/// `DRAIN_STALL`, or `DRAIN_MAX` passed — the sender still connected (a
/// backlog in socket buffers, which TCP autotunes to tens of MiB here, is
/// then counted, not cut off by the sender's teardown), so the loss
/// figures are losses. The rates come from the marks, not from this.
const DRAIN_STEP: Duration = Duration::from_millis(50);
const DRAIN_STALL: Duration = Duration::from_secs(1);
const DRAIN_MAX: Duration = Duration::from_secs(10);

/// The interval lengths of a run.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Sending before the first mark (connection ramp-up, windows, caches).
    pub warmup: Duration,
    /// Between the two marks: what is measured.
    pub interval: Duration,
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    /// Events received per second (ping-pong: round trips per second).
    pub rate: f64,
    /// CPU time of the sending process per event received, µs.
    pub send_cpu_us: f64,
    /// CPU time of the receiving process per event received, µs.
    pub recv_cpu_us: f64,
    /// Round trip, median and 99th percentile, µs (ping-pong only).
    pub rtt_p50_us: f64,
    pub rtt_p99_us: f64,
    /// Net's receiver `inbound_dropped` (events refused by a full shard).
    pub inbound_dropped: u64,
    /// Net's sender `send_dropped`.
    pub send_dropped: u64,
    /// Net's sender `retransmits`.
    pub retransmits: u64,
    /// Events the sender handed over that the receiver never counted (it
    /// counts, the sender still connected, until it has them all or its
    /// count stalls for 1 s): loss anywhere, socket buffers included.
    pub unreceived: i64,
    /// `send_blocking` calls that hit their 1 s deadline (credit stalls).
    pub send_timeouts: u64,
    /// Pings whose pong did not come within 500 ms.
    pub pong_timeouts: u64,
}

/// One child process and the JSON lines it prints.
struct Child {
    process: std::process::Child,
    stdin: ChildStdin,
    lines: Receiver<Value>,
    name: String,
}

impl Child {
    fn spawn(exe: &Path, name: &str, args: &[String]) -> Result<Self, String> {
        let mut process = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawn {name}: {e}"))?;
        let stdin = process.stdin.take().ok_or("no stdin")?;
        let stdout = process.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = channel();
        let label = name.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match serde_json::from_str::<Value>(&line) {
                    Ok(value) => {
                        if tx.send(value).is_err() {
                            break;
                        }
                    }
                    Err(_) => eprintln!("[{label}] {line}"),
                }
            }
        });
        Ok(Self {
            process,
            stdin,
            lines,
            name: name.to_string(),
        })
    }

    fn send(&mut self, command: &str) -> Result<(), String> {
        writeln!(self.stdin, "{command}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("{}: write {command}: {e}", self.name))
    }

    /// The next line, which must be an object with `key`; its value.
    fn expect(&self, key: &str) -> Result<Value, String> {
        match self.lines.recv_timeout(REPLY_TIMEOUT) {
            Ok(mut line) => {
                if let Some(error) = line.get("error") {
                    return Err(format!("{}: {error}", self.name));
                }
                line.get_mut(key)
                    .map(Value::take)
                    .ok_or_else(|| format!("{}: expected {key:?}, got {line}", self.name))
            }
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "{}: no {key:?} within {REPLY_TIMEOUT:?}",
                self.name
            )),
            Err(RecvTimeoutError::Disconnected) => {
                Err(format!("{}: exited before {key:?}", self.name))
            }
        }
    }

    /// Waits for the process to exit (it does after `done`), killing it
    /// after a few seconds.
    fn finish(mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.process.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("{}: did not exit, killing it", self.name);
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // A run that failed part-way: never leave the process behind.
        if let Ok(None) = self.process.try_wait() {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }
}

fn u(value: &Value, path: &[&str]) -> u64 {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// One receiver + sender pair, measured once.
pub fn run_once(
    exe: &Path,
    system: System,
    workload: Workload,
    timing: Timing,
    certs: Option<&Path>,
) -> Result<RunResult, String> {
    let mut common = vec![
        "--system".to_string(),
        system.name().to_string(),
        "--workload".to_string(),
        workload.name(),
    ];
    if let Some(dir) = certs.filter(|_| system == System::ZenohTls) {
        common.extend(["--certs".to_string(), dir.display().to_string()]);
    }
    let args = |role: &str, extra: &[String]| {
        let mut args = vec!["--role".to_string(), role.to_string()];
        args.extend(common.iter().cloned());
        args.extend(extra.iter().cloned());
        args
    };
    let mut receiver = Child::spawn(exe, "receiver", &args("receiver", &[]))?;
    let ready = receiver.expect("ready")?;
    let peer = ready["peer"].as_str().ok_or("receiver named no peer")?;
    let mut sender = Child::spawn(
        exe,
        "sender",
        &args("sender", &["--peer".to_string(), peer.to_string()]),
    )?;
    sender.expect("ready")?;
    sender.send("go")?;
    std::thread::sleep(timing.warmup);
    let mut marks = Vec::new();
    for pause in [Duration::ZERO, timing.interval] {
        std::thread::sleep(pause);
        receiver.send("mark")?;
        sender.send("mark")?;
        marks.push((receiver.expect("mark")?, sender.expect("mark")?));
    }
    sender.send("stop")?;
    let sent_count = u(&sender.expect("stopped")?, &["count"]);
    if let Workload::Stream { .. } = workload {
        let drain_started = Instant::now();
        let (mut last, mut moved) = (0, Instant::now());
        while drain_started.elapsed() < DRAIN_MAX && moved.elapsed() < DRAIN_STALL {
            std::thread::sleep(DRAIN_STEP);
            receiver.send("mark")?;
            let count = u(&receiver.expect("mark")?, &["count"]);
            if count >= sent_count {
                break;
            }
            if count != last {
                (last, moved) = (count, Instant::now());
            }
        }
    }
    sender.send("close")?;
    let sent = sender.expect("done")?;
    receiver.send("stop")?;
    let received = receiver.expect("done")?;
    sender.finish();
    receiver.finish();

    // marks[i] = (receiver's reply, sender's reply) at mark i.
    let delta = |side: fn(&(Value, Value)) -> &Value, key: &str| {
        u(side(&marks[1]), &[key]).saturating_sub(u(side(&marks[0]), &[key])) as f64
    };
    fn rx(m: &(Value, Value)) -> &Value {
        &m.0
    }
    fn tx(m: &(Value, Value)) -> &Value {
        &m.1
    }
    let mut result = RunResult::default();
    let (counted, secs) = match workload {
        Workload::Stream { .. } => (delta(rx, "count"), delta(rx, "t_ns") / 1e9),
        Workload::PingPong => (delta(tx, "count"), delta(tx, "t_ns") / 1e9),
    };
    result.rate = counted / secs;
    let events = counted.max(1.0);
    result.send_cpu_us = delta(tx, "cpu_us") / events;
    result.recv_cpu_us = delta(rx, "cpu_us") / events;
    result.rtt_p50_us = u(&sent, &["rtt", "p50_ns"]) as f64 / 1e3;
    result.rtt_p99_us = u(&sent, &["rtt", "p99_ns"]) as f64 / 1e3;
    result.inbound_dropped = u(&received, &["stats", "inbound_dropped"]);
    result.send_dropped = u(&sent, &["stats", "send_dropped"]);
    result.retransmits = u(&sent, &["stats", "retransmits"]);
    result.send_timeouts = u(&sent, &["send_timeouts"]);
    result.pong_timeouts = u(&sent, &["pong_timeouts"]);
    if std::env::var_os("MESH2P_STATS").is_some() {
        // Side runs: both nodes' counters as they closed.
        eprintln!("sender stats {}", sent["stats"]);
        eprintln!("receiver stats {}", received["stats"]);
    }
    if let Workload::Stream { .. } = workload {
        result.unreceived = u(&sent, &["count"]) as i64 - u(&received, &["count"]) as i64;
    }
    Ok(result)
}

/// A directory for this run's certificates.
pub fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!("mesh2p-{}", std::process::id()))
}
