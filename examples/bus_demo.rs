//! `make demo`, bus part: a million events through the event bus into the
//! embedded RedEX adapter (persistent files in a temp directory), then
//! polled back with a cursor — with a progress line for each phase.
//! With `NET_DEMO_DIR` set, the RedEX files go there and stay (`make demo`
//! then shows and verifies them with the `net` command).
//!
//! Run: `cargo run --release --example bus_demo`

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use net::bus::{BusConfig, EventBus, PollRequest, RedexAdapter};
use net::redex::{Redex, RedexFileConfig};

const EVENTS: u32 = 1_000_000;
const BATCH: usize = 1000;

fn progress(phase: &str, done: u32, started: Instant) {
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    print!(
        "\r  {phase:<8} {done:>9} / {EVENTS} ({:>3}%)  {:.2} M events/s",
        u64::from(done) * 100 / u64::from(EVENTS),
        f64::from(done) / secs / 1e6
    );
    let _ = std::io::stdout().flush();
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kept = std::env::var_os("NET_DEMO_DIR").map(std::path::PathBuf::from);
    let dir = kept.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("netmesh-demo-bus-{}", std::process::id()))
    });
    println!("== bus: {EVENTS} events into the embedded RedEX adapter, polled back with a cursor");
    let adapter = Arc::new(RedexAdapter::new(
        Redex::with_persistent_dir(&dir),
        "demo/bus",
        RedexFileConfig::persistent(),
    ));
    let bus = EventBus::new(
        BusConfig::from_json(r#"{"num_shards":4,"backpressure":{"mode":"fail_producer"}}"#)?,
        adapter,
    )?;

    let started = Instant::now();
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    let mut sent = 0u32;
    while sent < EVENTS {
        batch.clear();
        for i in sent..(sent + BATCH as u32).min(EVENTS) {
            batch.push(
                format!(
                    r#"{{"n":{i},"kind":"{}"}}"#,
                    if i % 10 == 0 { "tick" } else { "tock" }
                )
                .into_bytes(),
            );
        }
        let mut at = 0;
        while at < batch.len() {
            let r = bus.ingest_batch(&batch[at..])?;
            at += r.taken;
            if r.refused.is_some() {
                std::thread::yield_now(); // backpressure: the shard is full
            }
        }
        sent += batch.len() as u32;
        if sent.is_multiple_of(50_000) {
            progress("ingest", sent, started);
        }
    }
    let flushing = Instant::now();
    bus.flush()?;
    println!(
        "\n  stored     {} events (flush {:.0} ms)",
        bus.stats().events_dispatched,
        flushing.elapsed().as_secs_f64() * 1e3
    );

    let started = Instant::now();
    let mut cursor = None;
    let mut read = 0u32;
    let mut ticks = 0u32;
    let mut mark = 0u32;
    loop {
        let page = bus.poll(&PollRequest {
            cursor: cursor.take(),
            limit: 10_000,
            ..PollRequest::default()
        })?;
        for e in &page.events {
            if e.payload.windows(6).any(|w| w == b"\"tick\"") {
                ticks += 1;
            }
        }
        read += page.events.len() as u32;
        cursor = Some(page.next_cursor);
        if read >= mark {
            progress("poll", read, started);
            mark = read + 100_000;
        }
        if page.events.is_empty() && !page.has_more {
            break;
        }
    }
    progress("poll", read, started);
    println!();
    let report = bus.shutdown();
    println!(
        "  read back  {read} events ({ticks} ticks), dropped {}, lossy shutdown: {}",
        report.events_dropped, report.shutdown_was_lossy
    );
    if kept.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if read != EVENTS || report.shutdown_was_lossy {
        return Err("the bus lost events".into());
    }
    Ok(())
}
