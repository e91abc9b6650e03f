//! The JetStream adapter against a real nats-server (JetStream enabled,
//! file storage) on a free loopback port: round trips with dedup ids,
//! server-side dedup of retried batches, malformed remote data, a server
//! restart in the middle of a stream, and a producer killed and restarted
//! mid-stream with its persisted state.

mod bus_common;
mod servers;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use bus_common::{ingest_numbers, numbers, patient_bus, produce_across_a_restart};
use net::bus::*;
use servers::{Kind, Server};

fn adapter(server: &Server, prefix: &str) -> Arc<JetStreamAdapter> {
    Arc::new(
        JetStreamAdapter::new(JetStreamConfig {
            url: server.url(),
            prefix: prefix.into(),
            request_timeout_ms: 2_000,
            ..JetStreamConfig::default()
        })
        .unwrap(),
    )
}

fn poll_all(bus: &EventBus) -> Vec<StoredEvent> {
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
        out.extend(r.events);
        cursor = Some(r.next_cursor);
        if n == 0 && !r.has_more {
            return out;
        }
    }
}

#[test]
fn events_round_trip_with_msg_ids_from_nonce_shard_sequence_and_index() {
    let server = Server::start(Kind::Nats);
    let a = adapter(&server, "rt");
    let bus = patient_bus(a.clone(), 3);
    ingest_numbers(&bus, 0..5_000);
    bus.flush().unwrap();
    let s = bus.stats();
    assert_eq!((s.events_dispatched, s.events_dropped), (5_000, 0));
    let events = poll_all(&bus);
    let mut got = numbers(&events);
    got.sort_unstable();
    assert_eq!(got, (0..5_000).collect::<Vec<_>>(), "each event once");
    let nonce = format!("{:016x}", bus.producer_nonce());
    let mut ids = HashSet::new();
    for e in &events {
        let id = e.dedup_id.as_deref().expect("msg id stored");
        let parts: Vec<&str> = id.split(':').collect();
        assert_eq!(parts.len(), 4, "{id}");
        assert_eq!(parts[0], nonce);
        assert_eq!(parts[1], e.shard_id.to_string());
        assert!(ids.insert(id.to_owned()), "msg id {id} repeated");
    }
    // Per shard, stream sequences ascend and timestamps too.
    let mut last: HashMap<u16, (u64, u64)> = HashMap::new();
    for e in &events {
        let seq: u64 = e.id.parse().unwrap();
        if let Some(&(s, t)) = last.get(&e.shard_id) {
            assert!(seq > s && e.timestamp_ns > t);
        }
        last.insert(e.shard_id, (seq, e.timestamp_ns));
    }
    assert!(bus.adapter().name() == "jetstream");
    assert!(!bus.shutdown().shutdown_was_lossy);
}

#[test]
fn a_retried_batch_is_stored_once() {
    let server = Server::start(Kind::Nats);
    let a = adapter(&server, "dedup");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        a.init(&[0]).await.unwrap();
        assert!(a.is_healthy().await);
        let batch = Batch {
            producer_nonce: 7,
            shard_id: 0,
            sequence_start: 100,
            events: (0..50u64)
                .map(|i| BatchEvent {
                    timestamp_ns: 1_000 + i,
                    payload: i.to_le_bytes().to_vec(),
                })
                .collect(),
        };
        a.on_batch(&batch).await.unwrap();
        a.on_batch(&batch).await.unwrap(); // the retry after a lost ack
        let page = a.poll_shard(0, None, 1_000).await.unwrap();
        assert_eq!(page.events.len(), 50, "the server dropped the repeat");
        assert!(!page.has_more);
        // A cursor at the end reads nothing more; limits saturate.
        let last = page.events.last().unwrap().id.clone();
        let rest = a.poll_shard(0, Some(&last), usize::MAX).await.unwrap();
        assert!(rest.events.is_empty() && !rest.has_more);
        // The cursor increment at u64::MAX does not wrap to the start.
        let end = a
            .poll_shard(0, Some(&u64::MAX.to_string()), 10)
            .await
            .unwrap();
        assert!(end.events.is_empty());
        a.shutdown().await.unwrap();
    });
}

#[test]
fn a_populated_sparse_stream_is_walked_past_long_deletion_gaps() {
    let server = Server::start(Kind::Nats);
    let a = adapter(&server, "sparse");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        a.init(&[0]).await.unwrap();
        let batch = Batch {
            producer_nonce: 1,
            shard_id: 0,
            sequence_start: 0,
            events: (0..1_000u64)
                .map(|i| BatchEvent {
                    timestamp_ns: 1 + i,
                    payload: i.to_le_bytes().to_vec(),
                })
                .collect(),
        };
        a.on_batch(&batch).await.unwrap();
        // Keep stream sequences 1, 500 and 1000: gaps far longer than the
        // cold-stream cap, on a stream whose first_seq is not 0.
        let client = async_nats::connect(server.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let stream = js.get_stream(a.stream_name(0)).await.unwrap();
        for seq in (2..500).chain(501..1000) {
            assert!(stream.delete_message(seq).await.unwrap());
        }
        let page = a.poll_shard(0, None, 10).await.unwrap();
        let ids: Vec<&str> = page.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["1", "500", "1000"]);
        assert!(!page.has_more);
        // From a cursor inside a gap, too.
        let rest = a.poll_shard(0, Some("1"), 1).await.unwrap();
        assert_eq!(rest.events.len(), 1);
        assert_eq!(rest.events[0].id, "500");
        assert!(rest.has_more);
    });
}

#[test]
fn malformed_remote_data_is_fatal_never_defaulted() {
    let server = Server::start(Kind::Nats);
    let a = adapter(&server, "bad");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        a.init(&[0, 1, 2]).await.unwrap();
        let client = async_nats::connect(server.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        // No message id at all.
        js.publish(a.subject(0), vec![0u8; 9].into())
            .await
            .unwrap()
            .await
            .unwrap();
        // A message id whose shard does not fit in 16 bits.
        let publish = |id: &'static str, payload: Vec<u8>| {
            async_nats::jetstream::message::PublishMessage::build()
                .payload(payload.into())
                .message_id(id)
        };
        js.send_publish(
            a.subject(1),
            publish("00000000000000ab:65536:0:0", vec![0; 9]),
        )
        .await
        .unwrap()
        .await
        .unwrap();
        // A well-formed id, but a payload shorter than its timestamp.
        js.send_publish(a.subject(2), publish("00000000000000ab:2:0:0", vec![0; 7]))
            .await
            .unwrap()
            .await
            .unwrap();
        for shard in 0..3 {
            let e = a.poll_shard(shard, None, 10).await.unwrap_err();
            assert!(!e.is_retryable(), "shard {shard}: {e}");
        }
        // A corrupted cursor position is fatal too.
        assert!(
            !a.poll_shard(0, Some("x1"), 10)
                .await
                .unwrap_err()
                .is_retryable()
        );
    });
}

#[test]
fn a_server_restart_mid_stream_loses_nothing_acknowledged_and_dedup_holds() {
    let mut server = Server::start(Kind::Nats);
    let bus = Arc::new(patient_bus(adapter(&server, "restart"), 2));
    const TOTAL: u64 = 20_000;
    produce_across_a_restart(&bus, &mut server, TOTAL);
    let events = poll_all(&bus);
    let got = numbers(&events);
    let unique: HashSet<u64> = got.iter().copied().collect();
    assert_eq!(got.len(), unique.len(), "a retried batch was stored twice");
    assert_eq!(unique.len() as u64, TOTAL, "acknowledged events lost");
    assert!(!bus.shutdown().shutdown_was_lossy);
}

/// Runs the `net-bus-producer` binary (src/bin/net_bus_producer.rs).
fn producer(
    server: &Server,
    state: &std::path::Path,
    first: u64,
    count: u64,
) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_net-bus-producer"))
        .args(["--adapter", "jetstream", "--url", &server.url(), "--state"])
        .arg(state)
        .args([
            "--first",
            &first.to_string(),
            "--count",
            &count.to_string(),
            "--ack-every",
            "500",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

#[test]
fn a_producer_killed_and_restarted_mid_stream_neither_duplicates_nor_loses() {
    let server = Server::start(Kind::Nats);
    let state = server.dir().join("producer");
    // First life: killed after at least 3 000 events are acknowledged.
    let mut child = producer(&server, &state, 0, 1_000_000);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let nonce1 = lines.next().unwrap().unwrap();
    let mut acked1 = 0;
    for line in lines.by_ref() {
        let line = line.unwrap();
        acked1 = line.strip_prefix("acked ").unwrap().parse::<u64>().unwrap();
        if acked1 >= 3_000 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Second life: same state directory, new events.
    const SECOND: u64 = 10_000_000;
    let mut child = producer(&server, &state, SECOND, 4_000);
    let out = BufReader::new(child.stdout.take().unwrap());
    let lines: Vec<String> = out.lines().map(Result::unwrap).collect();
    assert!(child.wait().unwrap().success());
    assert_eq!(lines[0], nonce1, "the nonce persisted");
    assert_eq!(lines.last().unwrap(), &format!("acked {}", SECOND + 4_000));

    // Read every shard stream back.
    let a = adapter(&server, "net-bus");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let events = rt.block_on(async {
        a.init(&[0, 1]).await.unwrap();
        let mut all = Vec::new();
        for shard in 0..2 {
            let mut after: Option<String> = None;
            loop {
                let page = a.poll_shard(shard, after.as_deref(), 1_000).await.unwrap();
                if let Some(e) = page.events.last() {
                    after = Some(e.id.clone());
                }
                let n = page.events.len();
                all.extend(page.events);
                if n == 0 || !page.has_more {
                    break;
                }
            }
        }
        all
    });
    let got = numbers(&events);
    let unique: HashSet<u64> = got.iter().copied().collect();
    assert_eq!(got.len(), unique.len(), "a duplicate reached JetStream");
    for i in 0..acked1 {
        assert!(
            unique.contains(&i),
            "acknowledged event {i} of the first life lost"
        );
    }
    for i in SECOND..SECOND + 4_000 {
        assert!(
            unique.contains(&i),
            "event {i} of the second life lost (its msg id collided with the first life's?)"
        );
    }
    let msg_ids: HashSet<&str> = events
        .iter()
        .filter_map(|e| e.dedup_id.as_deref())
        .collect();
    assert_eq!(
        msg_ids.len(),
        events.len(),
        "msg ids are unique across both lives"
    );
}
