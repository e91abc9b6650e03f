//! The Redis Streams adapter against a real redis-server (append-only
//! file, fsync always) on a free loopback port: pipelined round trips with
//! dedup ids, consumer-side dedup, malformed entries, a health PING bounded
//! by the command timeout, and a server restart in the middle of a stream.

mod bus_common;
mod servers;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bus_common::{ingest_numbers, numbers, patient_bus, produce_across_a_restart};
use net::bus::*;
use servers::{Kind, Server};

fn adapter(server: &Server, prefix: &str, timeout_ms: u64) -> Arc<RedisAdapter> {
    Arc::new(
        RedisAdapter::new(RedisConfig {
            url: server.url(),
            prefix: prefix.into(),
            command_timeout_ms: timeout_ms,
            ..RedisConfig::default()
        })
        .unwrap(),
    )
}

/// Every event, with repeats dropped by the consumer-side FIFO dedup.
fn poll_all_dedup(bus: &EventBus) -> (Vec<StoredEvent>, u64) {
    let mut dedup = RedisStreamDedup::new(1 << 20);
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let r = bus
            .poll(&PollRequest {
                cursor: cursor.clone(),
                limit: 2_000,
                ..PollRequest::default()
            })
            .unwrap();
        let n = r.events.len();
        for e in r.events {
            let id = e.dedup_id.clone().expect("dedup id field");
            if !dedup.is_duplicate(&id) {
                out.push(e);
            }
        }
        cursor = Some(r.next_cursor);
        if n == 0 && !r.has_more {
            return (out, dedup.duplicates());
        }
    }
}

#[test]
fn events_round_trip_through_pipelined_xadd_with_dedup_ids() {
    let server = Server::start(Kind::Redis);
    let bus = patient_bus(adapter(&server, "rt", 2_000), 3);
    ingest_numbers(&bus, 0..5_000);
    bus.flush().unwrap();
    let s = bus.stats();
    assert_eq!((s.events_dispatched, s.events_dropped), (5_000, 0));
    let (events, dups) = poll_all_dedup(&bus);
    assert_eq!(dups, 0);
    let mut got = numbers(&events);
    got.sort_unstable();
    assert_eq!(got, (0..5_000).collect::<Vec<_>>());
    let nonce = format!("{:016x}", bus.producer_nonce());
    for e in &events {
        assert!(e.dedup_id.as_deref().unwrap().starts_with(&nonce));
    }
    assert_eq!(bus.adapter().name(), "redis");
    assert!(!bus.shutdown().shutdown_was_lossy);
}

#[test]
fn a_retried_pipeline_is_dropped_by_the_consumer_side_dedup() {
    let server = Server::start(Kind::Redis);
    let a = adapter(&server, "retry", 2_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        a.init(&[0]).await.unwrap();
        let batch = Batch {
            producer_nonce: 9,
            shard_id: 0,
            sequence_start: 0,
            events: (0..20u64)
                .map(|i| BatchEvent {
                    timestamp_ns: 10 + i,
                    payload: i.to_le_bytes().to_vec(),
                })
                .collect(),
        };
        a.on_batch(&batch).await.unwrap();
        a.on_batch(&batch).await.unwrap(); // applied, but its reply was lost
        let page = a.poll_shard(0, None, 1_000).await.unwrap();
        assert_eq!(page.events.len(), 40, "Redis stores both");
        let mut dedup = RedisStreamDedup::new(100);
        let kept = page
            .events
            .iter()
            .filter(|e| !dedup.is_duplicate(e.dedup_id.as_deref().unwrap()))
            .count();
        assert_eq!(kept, 20);
        // Paging with an exclusive cursor, and a saturating limit.
        let first = a.poll_shard(0, None, 15).await.unwrap();
        assert!(first.has_more);
        let rest = a
            .poll_shard(0, Some(&first.events[14].id), usize::MAX)
            .await
            .unwrap();
        assert_eq!(rest.events.len(), 25);
        assert!(!rest.has_more);
        assert!(
            !a.poll_shard(0, Some("garbage"), 1)
                .await
                .unwrap_err()
                .is_retryable()
        );
    });
}

#[test]
fn max_len_trims_each_stream() {
    let server = Server::start(Kind::Redis);
    let a = Arc::new(
        RedisAdapter::new(RedisConfig {
            url: server.url(),
            prefix: "trim".into(),
            max_len: Some(100),
            ..RedisConfig::default()
        })
        .unwrap(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        a.init(&[0]).await.unwrap();
        for start in (0..5_000u64).step_by(500) {
            let batch = Batch {
                producer_nonce: 2,
                shard_id: 0,
                sequence_start: start,
                events: (start..start + 500)
                    .map(|i| BatchEvent {
                        timestamp_ns: 1 + i,
                        payload: i.to_le_bytes().to_vec(),
                    })
                    .collect(),
            };
            a.on_batch(&batch).await.unwrap();
        }
        let client = redis::Client::open(server.url()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let len: u64 = redis::cmd("XLEN")
            .arg(a.key(0))
            .query_async(&mut c)
            .await
            .unwrap();
        // `MAXLEN ~` trims whole nodes: about 100 entries stay, never 5 000.
        assert!((100..1_000).contains(&len), "{len} entries");
        // What stays is the newest, oldest first.
        let page = a.poll_shard(0, None, 10_000).await.unwrap();
        assert_eq!(page.events.len() as u64, len);
        let last = page.events.last().unwrap();
        assert_eq!(last.payload, 4_999u64.to_le_bytes());
    });
}

#[test]
fn malformed_entries_are_fatal() {
    let server = Server::start(Kind::Redis);
    let a = adapter(&server, "bad", 2_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        a.init(&[0, 1]).await.unwrap();
        let client = redis::Client::open(server.url()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let _: String = redis::cmd("XADD")
            .arg(a.key(0))
            .arg("*")
            .arg("data")
            .arg("no dedup id")
            .query_async(&mut c)
            .await
            .unwrap();
        let _: String = redis::cmd("XADD")
            .arg(a.key(1))
            .arg("*")
            .arg("d")
            .arg("x")
            .arg("data")
            .arg("short") // fewer bytes than the 8-byte timestamp
            .query_async(&mut c)
            .await
            .unwrap();
        for shard in 0..2 {
            let e = a.poll_shard(shard, None, 10).await.unwrap_err();
            assert!(!e.is_retryable(), "shard {shard}: {e}");
        }
    });
}

#[test]
fn the_health_ping_is_bounded_by_the_command_timeout() {
    let server = Server::start(Kind::Redis);
    let a = adapter(&server, "health", 300);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        a.init(&[0]).await.unwrap();
        assert!(a.is_healthy().await);
        server.freeze(true); // connected, but never answers
        let t = Instant::now();
        assert!(!a.is_healthy().await);
        let took = t.elapsed();
        server.freeze(false);
        assert!(took < Duration::from_secs(2), "PING hung for {took:?}");
        // The connection recovers once the server answers again.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !a.is_healthy().await {
            assert!(Instant::now() < deadline, "never healthy again");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

#[test]
fn a_server_restart_mid_stream_loses_nothing_acknowledged_and_dedup_holds() {
    let mut server = Server::start(Kind::Redis);
    let bus = Arc::new(patient_bus(adapter(&server, "restart", 1_000), 2));
    const TOTAL: u64 = 20_000;
    produce_across_a_restart(&bus, &mut server, TOTAL);
    let (events, _dups) = poll_all_dedup(&bus);
    let got = numbers(&events);
    let unique: HashSet<u64> = got.iter().copied().collect();
    assert_eq!(got.len(), unique.len(), "a duplicate got past the dedup");
    assert_eq!(unique.len() as u64, TOTAL, "acknowledged events lost");
    assert!(!bus.shutdown().shutdown_was_lossy);
}
