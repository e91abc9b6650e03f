//! Helpers shared by the adapter suites that run against real servers:
//! a patient bus configuration (retries long enough to ride out a server
//! restart), numbered events, and a producer that keeps ingesting while
//! its server is killed and restarted.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use net::bus::*;

use crate::servers::Server;

/// A bus of `shards` over `adapter` whose dispatch retries for long enough
/// to ride out a server restart, and whose producers keep refused events.
pub fn patient_bus(adapter: Arc<dyn Adapter>, shards: u16) -> EventBus {
    let config = BusConfig::from_json(&format!(
        r#"{{"num_shards":{shards},"backpressure":{{"mode":"fail_producer"}},
            "batch":{{"min_size":64,"max_size":512,"max_delay_ms":2}},
            "max_attempts":60,"retry_base_ms":20,"retry_max_ms":400,"adapter_timeout_ms":2000}}"#
    ))
    .unwrap();
    EventBus::new(config, adapter).unwrap()
}

/// Ingests `range` as 8-byte little-endian numbers, retrying refused events.
pub fn ingest_numbers(bus: &EventBus, range: std::ops::Range<u64>) {
    for i in range {
        while let Err(e) = bus.ingest(i.to_le_bytes().to_vec()) {
            assert!(
                matches!(e, BusError::Backpressure { .. }),
                "ingest {i}: {e}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The numbers the events carry.
pub fn numbers(events: &[StoredEvent]) -> Vec<u64> {
    events
        .iter()
        .map(|e| u64::from_le_bytes(e.payload[..8].try_into().unwrap()))
        .collect()
}

/// Ingests `0..total` on a producer thread (pausing briefly every 100
/// events so the stream is still flowing later), kills and restarts
/// `server` once a third is in, waits for the producer, then flushes and
/// checks that the restart fell mid-stream, nothing was dropped and
/// everything was dispatched.
pub fn produce_across_a_restart(bus: &Arc<EventBus>, server: &mut Server, total: u64) {
    let produced = Arc::new(AtomicU64::new(0));
    let producer = {
        let (bus, produced) = (bus.clone(), produced.clone());
        std::thread::spawn(move || {
            for i in 0..total {
                ingest_numbers(&bus, i..i + 1);
                produced.store(i + 1, Ordering::Relaxed);
                if i % 100 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        })
    };
    while produced.load(Ordering::Relaxed) < total / 3 {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.restart();
    // The restart fell mid-stream: events were still to be dispatched once
    // the server was back, so they went through the restarted server. (Whether
    // an attempt failed meanwhile depends on timing: a client may buffer
    // what it publishes while it reconnects.)
    let at_restart = bus.stats().events_dispatched;
    assert!(at_restart < total, "the stream ended before the restart");
    producer.join().unwrap();
    bus.flush().unwrap();
    let s = bus.stats();
    assert_eq!(s.events_dropped, 0, "{s:?}");
    assert_eq!(s.events_dispatched, total, "{s:?}");
}
