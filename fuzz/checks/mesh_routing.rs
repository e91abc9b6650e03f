//! The routing module's handling of untrusted datagrams: pingwaves and
//! routed datagrams from direct peers, non-peers and forged sources, in any
//! order and at any pace. Nothing may panic; relayed pingwave copies
//! decode and never go back to their sender; a relayed routing header
//! differs from the received one only in ttl − 1 and hop_count + 1; the
//! table stays within its caps.
//!
//! Input: a sequence of records `[kind, from, gap_ms, len, bytes…]`.
//! `kind` bit 0 picks pingwave (0) or routed datagram (1); `from` picks the
//! sender (0 = unknown address, 1–4 = direct peers, others = non-peers).

use std::time::{Duration, Instant};

use net::mesh::routing::{Forward, PeerProtocol, PingwaveOutcome, Router, RoutingConfig};
use net::wire::Pingwave;

const MAX_DESTINATIONS: usize = 32;
const MAX_PER_NEIGHBOR: usize = 12;

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    let start = Instant::now();
    let mut now = start;
    let config = RoutingConfig {
        heartbeat_interval: Duration::from_millis(200),
        max_destinations: MAX_DESTINATIONS,
        max_routes_per_neighbor: MAX_PER_NEIGHBOR,
        max_candidates_per_destination: 3,
        route_expiry_intervals: 3,
        route_hold_intervals: 6,
    };
    let mut router = Router::new(100, config);
    for (peer, protocol) in [
        (1, PeerProtocol::Legacy),
        (2, PeerProtocol::Net),
        (3, PeerProtocol::Net),
        (4, PeerProtocol::Legacy),
    ] {
        router.table_mut().add_direct_peer(peer, protocol, now);
    }
    let mut rest = data;
    while let [kind, from, gap_ms, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (datagram, next) = tail.split_at(len);
        rest = next;
        now += Duration::from_millis(u64::from(*gap_ms));
        let from = (*from != 0).then_some(u64::from(*from));
        if let Some(peer) = from.filter(|p| *p <= 4) {
            router.table_mut().heard_from(peer, now);
        }
        if kind & 1 == 0 {
            let mut padded = [0u8; 72];
            let bytes = if kind & 2 == 0 {
                datagram
            } else {
                // Widen the search: most inputs become well-formed.
                let n = datagram.len().min(72);
                padded[..n].copy_from_slice(&datagram[..n]);
                padded[63] %= 4;
                &padded[..]
            };
            if let PingwaveOutcome::Accepted { relay } = router.on_pingwave(from, bytes, now) {
                for copy in relay {
                    assert_ne!(Some(copy.to), from, "relayed back to its sender");
                    let pw = Pingwave::decode(&copy.bytes).expect("relayed copy decodes");
                    if copy.to == 1 || copy.to == 4 {
                        assert!(pw.hop_count <= 3 && pw.ttl <= 3 - pw.hop_count);
                    }
                }
            }
        } else {
            let decision = router.forward(from, datagram, now);
            if let Forward::Relay { next_hop, header } = decision {
                assert_ne!(Some(next_hop), from, "forwarded back to its sender");
                assert!((1..=4).contains(&next_hop));
                assert_eq!(header[..2], datagram[..2]);
                assert_eq!(header[2], datagram[2] - 1);
                assert_eq!(header[3], datagram[3].saturating_add(1));
                assert_eq!(header[4..], datagram[4..18]);
            }
        }
        if kind & 4 != 0 {
            router.tick(now);
        }
        if kind & 8 != 0 {
            let _ = router
                .table_mut()
                .peer_failed(u64::from(kind >> 4) % 5, now);
        }
        assert!(router.table().learned_len() <= MAX_DESTINATIONS);
        for peer in 1..=4 {
            assert!(router.table().learned_via(peer) <= MAX_PER_NEIGHBOR);
        }
    }
    let snapshot = router.snapshot(now);
    assert!(snapshot.routes.iter().all(|r| r.hops >= 1));
}
