//! Bus benchmarks, each next to a same-run baseline.
//!
//! * Ingest rate of 64-byte events, one producer and four, into a bus
//!   whose adapter discards batches — vs pushing the same `Vec<u8>`s into
//!   a raw crossbeam `ArrayQueue` drained by one thread per queue.
//! * End-to-end: a million events ingested into the embedded RedEX adapter
//!   (memory files) and polled back with a cursor.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use net::bus::*;
use net::redex::{Redex, RedexFileConfig};

fn full() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Events/s accepted by `producers` threads for `secs`.
fn bus_ingest(producers: usize, secs: f64) -> f64 {
    let config = BusConfig::from_json(&format!(
        r#"{{"num_shards":{},"shard_capacity":1048576,"backpressure":{{"mode":"fail_producer"}},"batch":{{"min_size":1024,"max_size":65536,"max_delay_ms":2}}}}"#,
        producers.max(2)
    ))
    .unwrap();
    let bus = Arc::new(EventBus::new(config, Arc::new(DiscardAdapter::new())).unwrap());
    run_producers(producers, secs, {
        let bus = bus.clone();
        move || {
            let bus = bus.clone();
            Box::new(move || bus.ingest(vec![7u8; 64]).is_ok())
        }
    })
}

/// Events/s pushed into raw queues (one per producer, each drained).
fn raw_queue(producers: usize, secs: f64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let queues: Vec<Arc<ArrayQueue<Vec<u8>>>> = (0..producers.max(2))
        .map(|_| Arc::new(ArrayQueue::new(1 << 20)))
        .collect();
    let drainers: Vec<_> = queues
        .iter()
        .map(|q| {
            let (q, stop) = (q.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let mut n = 0;
                    while q.pop().is_some() && n < 65536 {
                        n += 1;
                    }
                    if n == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            })
        })
        .collect();
    let next = Arc::new(AtomicU64::new(0));
    let rate = run_producers(producers, secs, {
        let queues = queues.clone();
        move || {
            let queues = queues.clone();
            let mine = next.fetch_add(1, Ordering::Relaxed) as usize;
            let mut i = mine;
            Box::new(move || {
                i = i.wrapping_add(1);
                queues[i % queues.len()].push(vec![7u8; 64]).is_ok()
            })
        }
    });
    stop.store(true, Ordering::Relaxed);
    for d in drainers {
        d.join().unwrap();
    }
    rate
}

/// Batches of 1024 prebuilt 64-byte events through `ingest_batch`;
/// events/s queued by one producer.
fn bus_batch_ingest(secs: f64) -> f64 {
    let config = BusConfig::from_json(
        r#"{"num_shards":2,"shard_capacity":4194304,"backpressure":{"mode":"fail_producer"},"batch":{"min_size":1024,"max_size":65536,"max_delay_ms":2}}"#,
    )
    .unwrap();
    let bus = Arc::new(EventBus::new(config, Arc::new(DiscardAdapter::new())).unwrap());
    let events = vec![[7u8; 64]; 1024];
    run_batches(secs, move || {
        bus.ingest_batch(&events).map_or(0, |r| r.queued)
    })
}

/// The same batches copied into one buffer each and pushed into a raw
/// `ArrayQueue` drained by a thread.
fn raw_batch_push(secs: f64) -> f64 {
    let q: Arc<ArrayQueue<(Vec<u8>, Vec<usize>)>> = Arc::new(ArrayQueue::new(4096));
    let stop = Arc::new(AtomicBool::new(false));
    let drainer = {
        let (q, stop) = (q.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if q.pop().is_none() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })
    };
    let events = vec![[7u8; 64]; 1024];
    let rate = run_batches(secs, move || {
        let mut data = Vec::with_capacity(64 * 1024);
        let mut ends = Vec::with_capacity(1024);
        for e in &events {
            data.extend_from_slice(e);
            ends.push(data.len());
        }
        if q.push((data, ends)).is_ok() {
            1024
        } else {
            0
        }
    });
    stop.store(true, Ordering::Relaxed);
    drainer.join().unwrap();
    rate
}

/// Events/s of one thread calling `op` (which returns events queued).
fn run_batches(secs: f64, mut op: impl FnMut() -> usize) -> f64 {
    let t = Instant::now();
    let mut n = 0usize;
    while t.elapsed().as_secs_f64() < secs {
        let got = op();
        if got == 0 {
            std::thread::yield_now();
        }
        n += got;
    }
    n as f64 / t.elapsed().as_secs_f64()
}

type Op = Box<dyn FnMut() -> bool + Send>;

fn run_producers(producers: usize, secs: f64, make: impl Fn() -> Op) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..producers)
        .map(|_| {
            let (stop, done) = (stop.clone(), done.clone());
            let mut op = make();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..256 {
                        if op() {
                            n += 1;
                        } else {
                            std::thread::yield_now();
                        }
                    }
                }
                done.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for th in threads {
        th.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64()
}

/// Ingest `n` events into the embedded adapter, then poll them all back.
fn end_to_end(n: u32) -> (f64, f64) {
    let adapter = Arc::new(RedexAdapter::new(
        Redex::new(),
        "bench/bus",
        RedexFileConfig::heap(),
    ));
    let config = BusConfig::from_json(
        r#"{"num_shards":2,"shard_capacity":1048576,"backpressure":{"mode":"fail_producer"}}"#,
    )
    .unwrap();
    let bus = EventBus::new(config, adapter).unwrap();
    let t = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    for i in 0..n {
        batch.push(i.to_le_bytes().repeat(16));
        if batch.len() == 1000 {
            let mut rest = std::mem::take(&mut batch);
            while !rest.is_empty() {
                let r = bus.ingest_batch(&rest).unwrap();
                rest.drain(..r.taken);
            }
        }
    }
    bus.flush().unwrap();
    let ingest = f64::from(n) / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut cursor = None;
    let mut got = 0usize;
    loop {
        let r = bus
            .poll(&PollRequest {
                cursor,
                limit: 10_000,
                ..PollRequest::default()
            })
            .unwrap();
        got += r.events.len();
        cursor = Some(r.next_cursor);
        if r.events.is_empty() && !r.has_more {
            break;
        }
    }
    assert_eq!(got, n as usize);
    (ingest, f64::from(n) / t.elapsed().as_secs_f64())
}

fn main() {
    let secs = if full() { 1.0 } else { 0.1 };
    println!("bus (best of 3 interleaved rounds; 2 vCPUs)");
    for producers in [1, 4] {
        let (mut ours, mut raw) = (0f64, 0f64);
        for _ in 0..if full() { 3 } else { 1 } {
            raw = raw.max(raw_queue(producers, secs));
            ours = ours.max(bus_ingest(producers, secs));
        }
        println!(
            "ingest 64 B, {producers} producer(s)          {:>6.2} M events/s   vs raw ArrayQueue push {:>6.2} M/s   ratio {:.2}{}",
            ours / 1e6,
            raw / 1e6,
            ours / raw,
            if producers == 1 {
                "   (target 10 M/s)"
            } else {
                ""
            }
        );
    }
    let (mut ours, mut raw) = (0f64, 0f64);
    for _ in 0..if full() { 3 } else { 1 } {
        raw = raw.max(raw_batch_push(secs));
        ours = ours.max(bus_batch_ingest(secs));
    }
    println!(
        "ingest_batch 1024 x 64 B, 1 producer {:>6.2} M events/s   vs copy + raw ArrayQueue push {:>6.2} M/s   ratio {:.2}   (target 10 M/s)",
        ours / 1e6,
        raw / 1e6,
        ours / raw
    );
    let (ingest, poll) = end_to_end(if full() { 1_000_000 } else { 10_000 });
    println!(
        "end to end, 1 M x 64 B into RedEX   ingest+flush {:.2} M events/s, poll back {:.2} M events/s",
        ingest / 1e6,
        poll / 1e6
    );
}
