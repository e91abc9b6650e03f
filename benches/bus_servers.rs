//! The JetStream and Redis adapters against real servers (started here on
//! free loopback ports, as the test suites do), each next to its raw client
//! in the same run:
//!
//! * JetStream: events of 64 B ingested through the bus (2 shards, so two
//!   batches in flight) and flushed — vs raw async-nats: the same payloads
//!   published asynchronously (acks awaited in windows of 1 024) to one
//!   stream.
//! * Redis: the same through the bus — vs raw pipelined `XADD`s of the same
//!   payloads, 1 024 per pipeline, through the redis crate.
//!
//! Redis fsyncs its append-only file once a second here (the suites use
//! fsync-always): the benchmark compares clients, not the disk. Under
//! `cargo test` (no `--bench`) it runs a short smoke pass.
//! `NET_BENCH_SHARDS` and `NET_BENCH_BATCH_MAX` change the bus's shards
//! (default 2) and maximum batch (default 4096).

#[path = "../tests/servers/mod.rs"]
mod servers;

use std::sync::Arc;
use std::time::Instant;

use net::bus::*;
use servers::{Kind, Server};

const WINDOW: usize = 1024;

fn full() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn payloads(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut p = vec![b'e'; 64];
            p[..8].copy_from_slice(&(i as u64).to_le_bytes());
            p
        })
        .collect()
}

/// Events/s of the bus over `adapter`: ingest everything, then flush.
fn through_bus(adapter: Arc<dyn Adapter>, events: &[Vec<u8>]) -> f64 {
    let shards = std::env::var("NET_BENCH_SHARDS").unwrap_or_else(|_| "2".into());
    let max = std::env::var("NET_BENCH_BATCH_MAX").unwrap_or_else(|_| "4096".into());
    let config = BusConfig::from_json(&format!(
        r#"{{"num_shards":{shards},"shard_capacity":1048576,"backpressure":{{"mode":"fail_producer"}},
            "batch":{{"min_size":1024,"max_size":{max},"max_delay_ms":2}}}}"#,
    ))
    .unwrap();
    let bus = EventBus::new(config, adapter).unwrap();
    let t = Instant::now();
    for chunk in events.chunks(WINDOW) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let r = bus.ingest_batch(rest).unwrap();
            rest = &rest[r.taken..];
            if !rest.is_empty() {
                std::thread::yield_now();
            }
        }
    }
    bus.flush().unwrap();
    let rate = events.len() as f64 / t.elapsed().as_secs_f64();
    let s = bus.stats();
    assert_eq!(s.events_dispatched, events.len() as u64, "{s:?}");
    assert!(!bus.shutdown().shutdown_was_lossy);
    rate
}

fn raw_jetstream(rt: &tokio::runtime::Runtime, url: &str, stream: &str, events: &[Vec<u8>]) -> f64 {
    rt.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        js.get_or_create_stream(async_nats::jetstream::stream::Config {
            name: stream.into(),
            subjects: vec![format!("{stream}.in")],
            ..Default::default()
        })
        .await
        .unwrap();
        let subject = format!("{stream}.in");
        let t = Instant::now();
        for chunk in events.chunks(WINDOW) {
            let mut acks = Vec::with_capacity(chunk.len());
            for e in chunk {
                acks.push(js.publish(subject.clone(), e.clone().into()).await.unwrap());
            }
            for a in acks {
                a.await.unwrap();
            }
        }
        events.len() as f64 / t.elapsed().as_secs_f64()
    })
}

fn raw_redis(rt: &tokio::runtime::Runtime, url: &str, key: &str, events: &[Vec<u8>]) -> f64 {
    rt.block_on(async {
        let client = redis::Client::open(url).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let t = Instant::now();
        for chunk in events.chunks(WINDOW) {
            let mut pipe = redis::pipe();
            for e in chunk {
                pipe.cmd("XADD")
                    .arg(key)
                    .arg("*")
                    .arg("data")
                    .arg(e.as_slice())
                    .ignore();
            }
            pipe.exec_async(&mut c).await.unwrap();
        }
        events.len() as f64 / t.elapsed().as_secs_f64()
    })
}

/// Best of `rounds` interleaved rounds of the raw client and the bus (each
/// round gets its own stream names); prints one line with the ratio.
fn compare(
    label: &str,
    baseline: &str,
    rounds: usize,
    mut raw: impl FnMut(usize) -> f64,
    mut ours: impl FnMut(usize) -> f64,
) {
    let (mut best_ours, mut best_raw) = (0f64, 0f64);
    for round in 0..rounds {
        best_raw = best_raw.max(raw(round));
        best_ours = best_ours.max(ours(round));
    }
    println!(
        "{label:<34} {best_ours:>8.0} events/s   vs {baseline:<30} {best_raw:>8.0}/s   ratio {:.2}   (target 0.80)",
        best_ours / best_raw
    );
}

fn main() {
    let n = if full() { 300_000 } else { 5_000 };
    let rounds = if full() { 5 } else { 1 };
    let events = payloads(n);
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!(
        "bus adapters on real servers ({n} events of 64 B, best of {rounds} interleaved rounds; 2 vCPUs)"
    );

    let nats = Server::start_for_bench(Kind::Nats);
    compare(
        "JetStream publish",
        "raw async-nats async publish",
        rounds,
        |round| raw_jetstream(&rt, &nats.url(), &format!("raw{round}"), &events),
        |round| {
            let config = JetStreamConfig {
                url: nats.url(),
                prefix: format!("bench{round}"),
                ..JetStreamConfig::default()
            };
            through_bus(Arc::new(JetStreamAdapter::new(config).unwrap()), &events)
        },
    );
    drop(nats);

    let redis_server = Server::start_for_bench(Kind::Redis);
    compare(
        "Redis XADD",
        "raw pipelined XADD",
        rounds,
        |round| raw_redis(&rt, &redis_server.url(), &format!("raw{round}"), &events),
        |round| {
            let config = RedisConfig {
                url: redis_server.url(),
                prefix: format!("bench{round}"),
                ..RedisConfig::default()
            };
            through_bus(Arc::new(RedisAdapter::new(config).unwrap()), &events)
        },
    );
}
