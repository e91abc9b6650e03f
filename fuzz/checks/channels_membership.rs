//! The channel hub's membership handler on untrusted bytes: a sequence of
//! messages from a few peers (each `peer u8 ‖ len u8 ‖ len bytes`) into a
//! hub with an open channel, a token channel and a per-peer cap of 2, and
//! one of our own requests pending. Never panics; every reply is an Ack
//! that echoes the request's nonce; no peer exceeds the cap; an Ack is
//! never answered.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use net::identity::ChannelName;
use net::mesh::channels::*;
use net::wire::Membership;

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    let start = Instant::now();
    let now = |step: u64| Now {
        instant: start + Duration::from_millis(step * 700),
        unix_secs: 1_700_000_000 + step,
    };
    let mut hub = ChannelHub::new(
        LocalNode {
            node_id: 1,
            entity: None,
            subnet: SubnetId::GLOBAL,
        },
        ChannelsSettings {
            max_channels_per_peer: 2,
            max_auth_failures_per_window: 4,
            ..ChannelsSettings::default()
        },
    );
    let mut peers = BTreeMap::new();
    for id in 0..4u64 {
        peers.insert(
            id,
            PeerFacts {
                kind: if id % 2 == 0 {
                    PeerKind::Net
                } else {
                    PeerKind::Legacy
                },
                ..PeerFacts::default()
            },
        );
    }
    for (name, require_token) in [("a", false), ("b", true), ("c", false)] {
        let config = ChannelConfig {
            require_token,
            ..ChannelConfig::default()
        };
        let Ok(channel) = ChannelName::new(name) else {
            return;
        };
        let _ = hub.register(channel, config, &peers, now(0));
    }
    if let Ok(channel) = ChannelName::new("a") {
        let _ = hub.subscribe(2, &channel, None, now(0));
    }

    let mut rest = data;
    let mut step = 0;
    while let [peer, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (message, next) = tail.split_at(len);
        rest = next;
        step += 1;
        let peer = u64::from(*peer % 4);
        let context = peers[&peer].context(peer);
        let request = Membership::decode(message).ok();
        match hub.handle_bytes(&context, message, now(step)) {
            Ok(outcome) => match (&request, outcome.reply) {
                (Some(Membership::Ack { .. }), reply) => assert!(reply.is_none()),
                (
                    Some(
                        Membership::Subscribe { nonce, .. } | Membership::Unsubscribe { nonce, .. },
                    ),
                    Some(Membership::Ack { nonce: echoed, .. }),
                ) => assert_eq!(*nonce, echoed),
                (request, reply) => panic!("{request:?} answered with {reply:?}"),
            },
            Err(_) => assert!(request.is_none()),
        }
        assert!(hub.roster().channel_count(peer) <= 2);
        let _ = hub.expire_requests(now(step));
        if step % 5 == 0 {
            let _ = hub.sweep(&peers, now(step));
        }
        if let Ok(channel) = ChannelName::new("a") {
            let _ = hub.plan_publish(&channel, None, &peers, now(step));
        }
    }
}
