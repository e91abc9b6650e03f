//! A channel with 100 subscribers through real nodes (issue 13): 100
//! subscriber nodes, each with its own session to one publisher, all on
//! one channel. Every subscriber receives every event exactly once and in
//! order, tagged with the channel (reliable publishes: a retransmitting
//! stream per subscriber).
//!
//! Slow heartbeats keep 101 nodes quiet on a 2-core machine.

mod mesh_common;

use std::sync::Arc;

use mesh_common::{is_bound, nothing_for, recv_n, started_node, wait_until};
use net::identity::ChannelName;
use net::mesh::channels::ChannelConfig;
use net::mesh::*;

const SUBSCRIBERS: usize = 100;
const EVENTS: u32 = 100;

fn quiet() -> MeshNode {
    started_node(r#","heartbeat_interval_ms":500,"session_timeout_ms":10000"#)
}

#[test]
fn a_channel_with_100_subscribers_delivers_every_event_once_to_each() {
    let publisher = quiet();
    let channel = ChannelName::new("scale/hundred").unwrap();
    publisher
        .register_channel(&channel, ChannelConfig::default())
        .unwrap();
    let subscribers: Vec<Arc<MeshNode>> = (0..SUBSCRIBERS).map(|_| Arc::new(quiet())).collect();
    for s in &subscribers {
        s.connect(
            publisher.local_addr(),
            &publisher.public_key(),
            publisher.node_id(),
        )
        .unwrap();
    }
    wait_until(
        || {
            subscribers
                .iter()
                .all(|s| is_bound(&publisher, s.node_id()) && is_bound(s, publisher.node_id()))
        },
        "every subscriber's session is bound on both ends",
    );
    for s in &subscribers {
        s.subscribe(publisher.node_id(), &channel, None, None)
            .unwrap();
    }
    let json: serde_json::Value = serde_json::from_str(&publisher.channels_json()).unwrap();
    assert_eq!(
        json["channels"][0]["subscribers"].as_u64(),
        Some(SUBSCRIBERS as u64)
    );

    let readers: Vec<_> = subscribers
        .iter()
        .map(|s| {
            let s = s.clone();
            std::thread::spawn(move || recv_n(&s, EVENTS as usize))
        })
        .collect();
    // Reliable publishes (retransmitting streams): one 4-byte event each,
    // far below any subscriber's window, so every one goes to all 100.
    for i in 0..EVENTS {
        let report = publisher
            .publish(&channel, &[i.to_le_bytes()], true)
            .unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(
            (report.attempted, report.delivered),
            (SUBSCRIBERS, SUBSCRIBERS)
        );
    }
    for (reader, s) in readers.into_iter().zip(&subscribers) {
        let got = reader.join().unwrap();
        let numbers: Vec<u32> = got
            .iter()
            .map(|e| u32::from_le_bytes(e.data[..4].try_into().unwrap()))
            .collect();
        assert_eq!(
            numbers,
            (0..EVENTS).collect::<Vec<_>>(),
            "subscriber {:#x}",
            s.node_id()
        );
        assert!(got.iter().all(|e| e.peer == publisher.node_id()));
        assert!(got.iter().all(|e| e.channel.as_ref() == Some(&channel)));
    }
    // No duplicate anywhere: one short wait covers all (they run at once).
    let quiet_after: Vec<_> = subscribers
        .iter()
        .map(|s| {
            let s = s.clone();
            std::thread::spawn(move || nothing_for(&s, 300))
        })
        .collect();
    for (q, s) in quiet_after.into_iter().zip(&subscribers) {
        assert!(q.join().unwrap(), "a duplicate at {:#x}", s.node_id());
    }
}
