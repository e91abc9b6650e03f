//! The child side of the coordinator protocol, shared by every system.
//!
//! A child prints one JSON object per line on stdout and reads one word per
//! line on stdin:
//!
//! * it prints `{"ready":...}` once set up (a receiver includes the `peer`
//!   string the sender needs; a sender prints it once connected);
//! * `go` starts a sender's loop;
//! * `mark` is answered at once with `{"mark":{"count","t_ns","cpu_us"}}`
//!   — events counted so far (received, or sent), the child's monotonic
//!   clock and its CPU time (getrusage, user + sys, all threads). The first
//!   mark also starts collecting round-trip samples, the second stops it
//!   (later marks only read the count);
//! * `stop` ends the loop. A receiver then prints `{"done":{...}}` with
//!   its totals and exits. A sender prints `{"stopped":{"count"}}` and stays
//!   connected until `close`, so that nothing it queued is cut off by its
//!   own teardown while the coordinator waits for the receiver to count it
//!   all; then it prints `done` and exits. End of input means `close`.

use std::io::{BufRead, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What the control thread and the workload loop share.
pub struct Control {
    started: Instant,
    go: AtomicBool,
    stop: AtomicBool,
    close: AtomicBool,
    marks: AtomicUsize,
    /// Events received (receiver) or sent (sender), or round trips done.
    pub count: AtomicU64,
    /// Round-trip times (ns) taken between the two marks.
    pub rtts: Mutex<Vec<u64>>,
}

impl Control {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            go: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            close: AtomicBool::new(false),
            marks: AtomicUsize::new(0),
            count: AtomicU64::new(0),
            rtts: Mutex::new(Vec::new()),
        }
    }

    /// Whether `stop` was received.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Whether samples taken now fall inside the measured interval.
    pub fn measuring(&self) -> bool {
        self.marks.load(Ordering::Relaxed) == 1
    }

    /// Adds `n` to the event count.
    pub fn add(&self, n: u64) {
        self.count.fetch_add(n, Ordering::Relaxed);
    }

    /// Blocks until `go` (true) or `stop` (false).
    pub fn wait_go(&self) -> bool {
        while !self.go.load(Ordering::Relaxed) {
            if self.stopped() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Blocks until `stop`.
    pub fn wait_stop(&self) {
        while !self.stopped() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A sender's end of run: reports what it sent, then blocks until
    /// `close`.
    pub fn stopped_then_wait_close(&self) {
        emit(&json!({"stopped": {"count": self.count.load(Ordering::Relaxed)}}));
        while !self.close.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Records one round trip if inside the measured interval.
    pub fn record_rtt(&self, rtt: Duration) {
        if self.measuring() {
            self.rtts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(rtt.as_nanos() as u64);
        }
    }

    fn mark(&self) -> Value {
        let reply = json!({"mark": {
            "count": self.count.load(Ordering::Relaxed),
            "t_ns": self.started.elapsed().as_nanos() as u64,
            "cpu_us": cpu_time_us(),
        }});
        self.marks.fetch_add(1, Ordering::Relaxed);
        reply
    }
}

/// This process's CPU time so far, user + system, all threads, in µs.
pub fn cpu_time_us() -> u64 {
    // SAFETY: getrusage writes a plain C struct we own; RUSAGE_SELF is valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return 0;
        }
        usage
    };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(usage.ru_utime) + us(usage.ru_stime)
}

/// Prints one protocol line (whole, then flushed).
pub fn emit(value: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// Starts the control thread that answers the coordinator's commands.
pub fn start_control() -> &'static Control {
    let control: &'static Control = Box::leak(Box::new(Control::new()));
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line.as_deref().map(str::trim) {
                Ok("go") => control.go.store(true, Ordering::Relaxed),
                Ok("mark") => emit(&control.mark()),
                Ok("stop") => control.stop.store(true, Ordering::Relaxed),
                Ok("close") | Err(_) => break,
                Ok(other) => eprintln!("mesh2p child: unknown command {other:?}"),
            }
        }
        control.stop.store(true, Ordering::Relaxed);
        control.close.store(true, Ordering::Relaxed);
    });
    control
}

/// Median and 99th percentile of round-trip samples (ns), sorting them.
pub fn percentiles(samples: &mut [u64]) -> (u64, u64) {
    if samples.is_empty() {
        return (0, 0);
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.5), at(0.99))
}

/// The `done` line's round-trip fields (empty unless samples were taken).
pub fn rtt_summary(control: &Control) -> Value {
    let mut samples = std::mem::take(&mut *control.rtts.lock().unwrap_or_else(|e| e.into_inner()));
    let (p50, p99) = percentiles(&mut samples);
    json!({"samples": samples.len(), "p50_ns": p50, "p99_ns": p99})
}
