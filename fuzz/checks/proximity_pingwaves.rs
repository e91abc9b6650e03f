//! The proximity graph fed untrusted pingwaves: never panics, never holds
//! more nodes than its bound, never admits its own or an over-long
//! pingwave, and forwards only with ttl − 1 / hops + 1.
//!
//! Input: records of 1 byte (time step, ms × 64) + 1 byte (sender) +
//! 72 bytes (a pingwave, decoded by the wire codec; undecodable ones are
//! skipped). A sender byte with the top bit set feeds an RTT sample
//! instead.

use std::time::{Duration, Instant};

use net::behavior::proximity::{PingwaveDrop, ProximityConfig, ProximityGraph};
use net::wire::Pingwave;
use net::wire::pingwave::{PINGWAVE_MAX_HOPS, PINGWAVE_SIZE};

const LOCAL: u64 = 1;
const MAX_NODES: usize = 16;

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    let mut graph = ProximityGraph::new(
        LOCAL,
        ProximityConfig {
            max_nodes: MAX_NODES,
            ..ProximityConfig::default()
        },
    );
    let start = Instant::now();
    let mut now = start;
    for record in data.chunks_exact(2 + PINGWAVE_SIZE) {
        now += Duration::from_millis(u64::from(record[0]) * 64);
        let sender = u64::from(record[1] & 0x7f);
        if record[1] & 0x80 != 0 {
            let rtt =
                Duration::from_micros(u64::from_le_bytes(record[2..10].try_into().unwrap()) >> 24);
            graph.record_rtt(sender, rtt, now);
        } else if let Ok(pw) = Pingwave::decode(&record[2..]) {
            match graph.on_pingwave(&pw, sender, now) {
                Ok(accepted) => {
                    assert_ne!(pw.origin_node_id(), LOCAL);
                    assert!(pw.hop_count < PINGWAVE_MAX_HOPS);
                    if let Some(f) = accepted.forward {
                        assert_eq!(f.ttl, pw.ttl - 1);
                        assert_eq!(f.hop_count, pw.hop_count + 1);
                    } else {
                        assert_eq!(pw.ttl, 0);
                    }
                    assert!(graph.node(pw.origin_node_id()).is_some());
                }
                Err(PingwaveDrop::Own) => assert_eq!(pw.origin_node_id(), LOCAL),
                Err(_) => {}
            }
        }
        assert!(graph.len() <= MAX_NODES);
        for (id, score) in graph.best_nodes(4) {
            assert!(score.is_finite() && score >= 0.0, "{id}: {score}");
        }
    }
    graph.gc(now + Duration::from_secs(3600));
    assert!(graph.is_empty());
}
