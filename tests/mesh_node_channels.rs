//! Channels on running nodes (issue 13, MESH2.md §1): subscribe, publish
//! and unsubscribe between Net nodes, the authorization outcomes a
//! subscriber sees, token expiry evicting a subscriber, the per-peer
//! channel cap, reliable publish under loss, a relayed subscriber, v0.11
//! interop with a raw peer, and colliding channel hashes.

mod mesh_common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mesh_common::{
    PSK, RawPeer, channel_subscribers as subscribers, node, nothing_for, recv_n, wait_until,
};
use net::identity::{
    ChannelName, EntityKeypair, PermissionToken, TokenScope, channel_hash, publish_stream_id,
};
use net::mesh::channels::ChannelConfig;
use net::mesh::*;
use net::wire::{AckReason, Membership, flags, ids};

fn name(s: &str) -> ChannelName {
    ChannelName::new(s).unwrap()
}

/// A started node whose identity derives from `seed` (so tests can sign
/// tokens with the publisher's key).
fn seeded(seed: u8, extra: &str) -> MeshNode {
    let seed_hex: String = std::iter::repeat_n(format!("{seed:02x}"), 32).collect();
    let n = node(&format!(r#","identity_seed_hex":"{seed_hex}"{extra}"#));
    n.start().unwrap();
    n
}

fn started(extra: &str) -> MeshNode {
    let n = node(extra);
    n.start().unwrap();
    n
}

/// `a` connects to `b` and both see a bound Net session.
fn link(a: &MeshNode, b: &MeshNode) {
    a.connect(b.local_addr(), &b.public_key(), b.node_id())
        .unwrap();
    wait_until(
        || {
            b.peers()
                .iter()
                .any(|p| p.node_id == a.node_id() && p.identity == "net")
                && a.peers()
                    .iter()
                    .any(|p| p.node_id == b.node_id() && p.identity == "net")
        },
        "the identity exchange completes on both ends",
    );
}

fn rejected(result: Result<(), ChannelError>) -> AckReason {
    match result {
        Err(ChannelError::Rejected(reason)) => reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn subscribe_publish_unsubscribe_between_net_nodes() {
    let (a, b) = (started(""), started(""));
    link(&b, &a);
    let ch = name("sensors/lidar");
    a.register_channel(&ch, ChannelConfig::default()).unwrap();
    b.subscribe(a.node_id(), &ch, None, None).unwrap();
    assert_eq!(subscribers(&a, "sensors/lidar"), 1);

    let report = a.publish(&ch, &[b"one".as_slice(), b"two"], false).unwrap();
    assert_eq!((report.attempted, report.delivered), (1, 1));
    assert!(report.errors.is_empty());
    let got = recv_n(&b, 2);
    assert_eq!(got[0].data, b"one");
    assert_eq!(got[1].data, b"two");
    for event in &got {
        assert_eq!(event.peer, a.node_id());
        assert_eq!(event.stream_id, publish_stream_id(ch.hash()));
        assert_eq!(event.channel.as_ref(), Some(&ch));
    }
    // An ordinary stream carries no channel.
    a.send(b.node_id(), 7, &[b"plain"]).unwrap();
    let plain = recv_n(&b, 1);
    assert_eq!((plain[0].stream_id, plain[0].channel.clone()), (7, None));

    b.unsubscribe(a.node_id(), &ch, None).unwrap();
    assert_eq!(subscribers(&a, "sensors/lidar"), 0);
    let report = a.publish(&ch, &[b"three"], false).unwrap();
    assert_eq!((report.attempted, report.delivered), (0, 0));
    assert!(nothing_for(&b, 300), "an unsubscribed node gets nothing");
    // Unsubscribing again is accepted (idempotent).
    b.unsubscribe(a.node_id(), &ch, None).unwrap();
}

/// Records the header priority of every publish packet a node sends on
/// `stream`.
struct PriorityProbe {
    stream: u64,
    seen: std::sync::Mutex<Vec<u8>>,
}

impl net::mesh::PacketFilter for PriorityProbe {
    fn outbound(&self, _to: std::net::SocketAddr, datagram: &[u8]) -> net::mesh::Verdict {
        if let Ok(h) = net::wire::NetHeader::decode(datagram)
            && h.stream_id == self.stream
        {
            self.seen.lock().unwrap().push(h.priority);
        }
        net::mesh::Verdict::Pass
    }
}

/// A publish puts every subscriber's events into its outbox first, and the
/// outboxes waiting for the writer are written together: one `sendmmsg`
/// for many subscribers, not one system call each.
#[test]
fn a_publish_writes_its_subscribers_together() {
    // Not started, and no large-datagram probes: no heartbeats, pingwaves
    // or probes among the counted writes.
    let quiet = r#","large_datagrams":false"#;
    let publisher = node(quiet);
    let subs: Vec<MeshNode> = (0..5).map(|_| node(quiet)).collect();
    let ch = name("fanout/batched");
    publisher
        .register_channel(&ch, ChannelConfig::default())
        .unwrap();
    for s in &subs {
        link(s, &publisher);
        s.subscribe(publisher.node_id(), &ch, None, None).unwrap();
    }
    // Every write goes to the writer thread, held at its gate: the
    // subscribers' outboxes queue up behind it.
    publisher.set_force_handoff(true);
    publisher.set_writer_gate(true);
    let (calls, packets) = (
        publisher.stat("write_calls"),
        publisher.stat("packets_written"),
    );
    let report = publisher.publish(&ch, &[b"to all"], false).unwrap();
    assert_eq!(report.delivered, 5);
    wait_until(
        || publisher.writers_at_gate() == 1,
        "the writer at its gate",
    );
    publisher.set_writer_gate(false);
    for s in &subs {
        assert_eq!(recv_n(s, 1)[0].data, b"to all");
    }
    assert_eq!(publisher.stat("packets_written") - packets, 5);
    // The first outbox reached the writer alone; the other four went in
    // one call (not four).
    let used = publisher.stat("write_calls") - calls;
    assert!(used <= 2, "{used} write calls for 5 subscribers");
}

#[test]
fn a_channels_priority_reaches_net_subscribers_headers_only() {
    let (a, b) = (started(""), started(""));
    link(&b, &a);
    let ch = name("alerts/fire");
    let config = ChannelConfig {
        priority: 9,
        ..ChannelConfig::default()
    };
    a.register_channel(&ch, config.clone()).unwrap();
    b.subscribe(a.node_id(), &ch, None, None).unwrap();
    let probe = Arc::new(PriorityProbe {
        stream: publish_stream_id(ch.hash()),
        seen: Default::default(),
    });
    a.set_filter(Some(probe.clone()));
    a.publish(&ch, &[b"smoke".as_slice()], true).unwrap();
    assert_eq!(recv_n(&b, 1)[0].data, b"smoke");
    let seen = probe.seen.lock().unwrap().clone();
    assert!(!seen.is_empty() && seen.iter().all(|&p| p == 9), "{seen:?}");

    // A v0.11 subscriber of the same kind of channel sees priority 0, as
    // v0.11 always sends.
    let legacy = name("alerts/legacy");
    a.register_channel(&legacy, config).unwrap();
    let mut raw = RawPeer::connect(&a, 0x0123_4567_89ab_cdef, &PSK).expect("handshake");
    let subscribe = Membership::Subscribe {
        nonce: 1,
        channel: legacy.clone(),
        token: None,
    }
    .encode();
    let datagram = raw.subprotocol(ids::MEMBERSHIP, &[&subscribe]);
    raw.send(&datagram);
    raw.recv_matching(Duration::from_secs(5), |h, _| {
        h.subprotocol_id == ids::MEMBERSHIP
    })
    .expect("an Ack");
    a.publish(&legacy, &[b"e"], false).unwrap();
    let stream = publish_stream_id(legacy.hash());
    let (header, _) = raw
        .recv_matching(Duration::from_secs(5), |h, _| h.stream_id == stream)
        .expect("the publish");
    assert_eq!(header.priority, 0);
}

#[test]
fn refusals_are_typed_and_a_valid_token_is_accepted() {
    let a = seeded(0x11, "");
    let b = seeded(0x22, "");
    link(&b, &a);
    // Not registered at the publisher.
    assert_eq!(
        rejected(b.subscribe(a.node_id(), &name("nowhere"), None, None)),
        AckReason::UnknownChannel
    );
    // Publishing on an unregistered channel is refused locally.
    assert!(matches!(
        a.publish(&name("nowhere"), &[b"x"], false),
        Err(ChannelError::Publish(_))
    ));

    let gated = name("vault");
    a.register_channel(
        &gated,
        ChannelConfig {
            require_token: true,
            ..ChannelConfig::default()
        },
    )
    .unwrap();
    assert_eq!(
        rejected(b.subscribe(a.node_id(), &gated, None, None)),
        AckReason::Unauthorized
    );
    // A token B mints for itself is not from a trusted issuer.
    let b_key = EntityKeypair::from_seed(&[0x22; 32]);
    let self_minted = PermissionToken::issue(
        &b_key,
        *b_key.entity_id(),
        TokenScope::SUBSCRIBE,
        gated.hash(),
        Duration::from_secs(60),
        0,
    )
    .unwrap();
    assert_eq!(
        rejected(b.subscribe(a.node_id(), &gated, Some(&self_minted), None)),
        AckReason::Unauthorized
    );
    // The publisher's own key issues a SUBSCRIBE token for B.
    let a_key = EntityKeypair::from_seed(&[0x11; 32]);
    let token = PermissionToken::issue(
        &a_key,
        b.entity_id(),
        TokenScope::SUBSCRIBE,
        gated.hash(),
        Duration::from_secs(60),
        0,
    )
    .unwrap();
    b.subscribe(a.node_id(), &gated, Some(&token), None)
        .unwrap();
    a.publish(&gated, &[b"secret"], false).unwrap();
    let got = recv_n(&b, 1);
    assert_eq!(got[0].channel.as_ref(), Some(&gated));
    assert_eq!(got[0].data, b"secret");
}

#[test]
fn an_expired_token_is_evicted_by_the_sweep_and_stops_delivery() {
    let a = seeded(0x31, r#","token_sweep_interval_ms":1000"#);
    let b = seeded(0x32, "");
    link(&b, &a);
    let ch = name("ticker");
    a.register_channel(
        &ch,
        ChannelConfig {
            require_token: true,
            ..ChannelConfig::default()
        },
    )
    .unwrap();
    let a_key = EntityKeypair::from_seed(&[0x31; 32]);
    let token = PermissionToken::issue(
        &a_key,
        b.entity_id(),
        TokenScope::SUBSCRIBE,
        ch.hash(),
        Duration::from_secs(3),
        0,
    )
    .unwrap();
    b.subscribe(a.node_id(), &ch, Some(&token), None).unwrap();
    assert_eq!(subscribers(&a, "ticker"), 1);
    // No publish happens meanwhile: only the sweep can evict.
    let deadline = Instant::now() + Duration::from_secs(20);
    while subscribers(&a, "ticker") == 1 {
        assert!(Instant::now() < deadline, "the sweep never evicted");
        std::thread::sleep(Duration::from_millis(50));
    }
    let json: serde_json::Value = serde_json::from_str(&a.channels_json()).unwrap();
    assert!(json["counters"]["evicted"].as_u64().unwrap() >= 1);
    let report = a.publish(&ch, &[b"late"], false).unwrap();
    assert_eq!(report.attempted, 0);
    assert!(nothing_for(&b, 300));
}

#[test]
fn resubscribing_at_the_channel_cap_is_idempotent() {
    let a = started(r#","max_channels_per_peer":2"#);
    let b = started("");
    link(&b, &a);
    let (c1, c2, c3) = (name("cap/one"), name("cap/two"), name("cap/three"));
    for c in [&c1, &c2, &c3] {
        a.register_channel(c, ChannelConfig::default()).unwrap();
    }
    b.subscribe(a.node_id(), &c1, None, None).unwrap();
    b.subscribe(a.node_id(), &c2, None, None).unwrap();
    assert_eq!(
        rejected(b.subscribe(a.node_id(), &c3, None, None)),
        AckReason::TooManyChannels
    );
    // Already in c1: the cap does not apply to a re-subscribe.
    b.subscribe(a.node_id(), &c1, None, None).unwrap();
    assert_eq!(subscribers(&a, "cap/one"), 1);
    assert_eq!(subscribers(&a, "cap/two"), 1);
    assert_eq!(subscribers(&a, "cap/three"), 0);
}

#[test]
fn a_reliable_publish_under_loss_arrives_whole_once_and_in_order() {
    let (a, b) = (started(""), started(""));
    link(&b, &a);
    let ch = name("reliable/feed");
    a.register_channel(&ch, ChannelConfig::default()).unwrap();
    b.subscribe(a.node_id(), &ch, None, None).unwrap();
    // Both directions lose a fifth: data one way, acks and grants the other.
    for (n, seed) in [(&a, 5), (&b, 6)] {
        n.set_filter(Some(Arc::new(NetemFilter::new(
            0.20,
            0.0,
            0.0,
            Duration::ZERO,
            seed,
        ))));
    }
    let total = 400u32;
    let b = Arc::new(b);
    let reader = {
        let b = b.clone();
        std::thread::spawn(move || recv_n(&b, total as usize))
    };
    let give_up = Instant::now() + Duration::from_secs(60);
    for i in 0..total {
        let mut event = [0u8; 200];
        event[..4].copy_from_slice(&i.to_le_bytes());
        loop {
            let report = a.publish(&ch, &[&event[..]], true).unwrap();
            assert_eq!(report.attempted, 1);
            if report.delivered == 1 {
                break;
            }
            assert!(
                matches!(report.errors[0].1, MeshError::Backpressure(_)),
                "{:?}",
                report.errors
            );
            assert!(Instant::now() < give_up, "credit never came back");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let got = reader.join().unwrap();
    let numbers: Vec<u32> = got
        .iter()
        .map(|e| u32::from_le_bytes(e.data[..4].try_into().unwrap()))
        .collect();
    assert_eq!(numbers, (0..total).collect::<Vec<_>>());
    assert!(got.iter().all(|e| e.channel.as_ref() == Some(&ch)));
    assert!(nothing_for(&b, 300), "no duplicate");
    assert!(a.stat("retransmits") > 0, "the loss was real");
}

#[test]
fn a_relayed_subscriber_subscribes_and_receives_through_the_relay() {
    let (a, r, b) = (started(""), started(""), started(""));
    link(&a, &r);
    link(&b, &r);
    b.connect_via(r.node_id(), &a.public_key(), a.node_id(), None)
        .unwrap();
    wait_until(
        || {
            a.peers()
                .iter()
                .any(|p| p.node_id == b.node_id() && p.identity == "net")
        },
        "the relayed session is bound",
    );
    let ch = name("over/relay");
    a.register_channel(&ch, ChannelConfig::default()).unwrap();
    // The relay has no such channel: an Ack from it would be a refusal.
    b.subscribe(a.node_id(), &ch, None, None).unwrap();
    assert_eq!(subscribers(&a, "over/relay"), 1);
    assert_eq!(subscribers(&r, "over/relay"), 0);
    let report = a
        .publish(&ch, &[b"via r".as_slice(), b"again"], true)
        .unwrap();
    assert_eq!(report.delivered, 1);
    let got = recv_n(&b, 2);
    assert_eq!(got[0].data, b"via r");
    assert_eq!(got[1].data, b"again");
    assert!(got.iter().all(|e| e.peer == a.node_id()));
    assert!(got.iter().all(|e| e.channel.as_ref() == Some(&ch)));
    assert!(nothing_for(&r, 300), "the relay never delivers them itself");
}

#[test]
fn a_v011_peer_subscribes_with_raw_bytes_and_gets_v011_publishes() {
    let a = started("");
    let ch = name("legacy/feed");
    a.register_channel(&ch, ChannelConfig::default()).unwrap();
    let mut raw = RawPeer::connect(&a, 0x0123_4567_89ab_cdef, &PSK).expect("handshake");
    let nonce = 0x5eed_0000_0000_0042;
    let subscribe = Membership::Subscribe {
        nonce,
        channel: ch.clone(),
        token: None,
    }
    .encode();
    let datagram = raw.subprotocol(ids::MEMBERSHIP, &[&subscribe]);
    raw.send(&datagram);
    let (header, events) = raw
        .recv_matching(Duration::from_secs(5), |h, _| {
            h.subprotocol_id == ids::MEMBERSHIP
        })
        .expect("an Ack");
    assert_eq!(header.stream_id, u64::from(ids::MEMBERSHIP));
    assert_eq!(
        Membership::decode(&events[0]).unwrap(),
        Membership::Ack {
            nonce,
            accepted: true,
            reason: AckReason::Ok,
        }
    );

    let report = a.publish(&ch, &[b"e1".as_slice(), b"e2"], true).unwrap();
    assert_eq!((report.attempted, report.delivered), (1, 1));
    let stream = publish_stream_id(ch.hash());
    let (header, events) = raw
        .recv_matching(Duration::from_secs(5), |h, _| h.stream_id == stream)
        .expect("the publish");
    assert_eq!(header.subprotocol_id, 0);
    assert_eq!(header.channel_hash, 0);
    assert_eq!(header.flags, flags::RELIABLE);
    assert_eq!(events, vec![b"e1".to_vec(), b"e2".to_vec()]);
    // A best-effort publish carries no flag at all.
    let plain = name("legacy/plain");
    a.register_channel(&plain, ChannelConfig::default())
        .unwrap();
    let subscribe = Membership::Subscribe {
        nonce: nonce + 1,
        channel: plain.clone(),
        token: None,
    }
    .encode();
    let datagram = raw.subprotocol(ids::MEMBERSHIP, &[&subscribe]);
    raw.send(&datagram);
    raw.recv_matching(Duration::from_secs(5), |h, e| {
        h.subprotocol_id == ids::MEMBERSHIP
            && matches!(Membership::decode(&e[0]), Ok(Membership::Ack { nonce: n, .. }) if n == nonce + 1)
    })
    .expect("the second Ack");
    a.publish(&plain, &[b"p"], false).unwrap();
    let stream = publish_stream_id(plain.hash());
    let (header, _) = raw
        .recv_matching(Duration::from_secs(5), |h, _| h.stream_id == stream)
        .expect("the plain publish");
    assert_eq!((header.flags, header.subprotocol_id), (0, 0));
}

#[test]
fn colliding_channel_hashes_are_never_merged_at_one_publisher() {
    let mut seen: HashMap<u16, String> = HashMap::new();
    let (first, second) = (0u32..)
        .find_map(|i| {
            let candidate = format!("c{i}");
            seen.insert(channel_hash(candidate.as_bytes()), candidate.clone())
                .map(|earlier| (name(&earlier), name(&candidate)))
        })
        .unwrap();
    assert_eq!(first.hash(), second.hash());
    let (a, b) = (started(""), started(""));
    link(&b, &a);
    a.register_channel(&first, ChannelConfig::default())
        .unwrap();
    // The publisher cannot register both either.
    assert!(matches!(
        a.register_channel(&second, ChannelConfig::default()),
        Err(ChannelError::Registry(_))
    ));
    b.subscribe(a.node_id(), &first, None, None).unwrap();
    match b.subscribe(a.node_id(), &second, None, None) {
        Err(ChannelError::HashCollision(c)) => {
            assert_eq!((c.name, c.existing), (second.clone(), first.clone()));
        }
        other => panic!("expected a hash collision, got {other:?}"),
    }
    a.publish(&first, &[b"only first"], false).unwrap();
    let got = recv_n(&b, 1);
    assert_eq!(got[0].channel.as_ref(), Some(&first));
}

#[test]
fn an_ack_counts_only_from_the_publisher_asked_with_its_nonce() {
    let b = started("");
    // Two v0.11-style peers: `publisher` is asked; `spoofer` is not.
    let mut publisher = RawPeer::connect(&b, 0x0aaa_0000_0000_0001, &PSK).expect("handshake");
    let mut spoofer = RawPeer::connect(&b, 0x0bbb_0000_0000_0002, &PSK).expect("handshake");
    let b = Arc::new(b);
    let ch = name("asked/only");
    let waiting = {
        let (b, ch) = (b.clone(), ch.clone());
        std::thread::spawn(move || b.subscribe(0x0aaa_0000_0000_0001, &ch, None, None))
    };
    let (_, events) = publisher
        .recv_matching(Duration::from_secs(5), |h, _| {
            h.subprotocol_id == ids::MEMBERSHIP
        })
        .expect("the Subscribe");
    let nonce = match Membership::decode(&events[0]).unwrap() {
        Membership::Subscribe {
            nonce,
            channel,
            token,
        } => {
            assert_eq!((channel, token), (ch.clone(), None));
            nonce
        }
        other => panic!("expected a Subscribe, got {other:?}"),
    };
    let accept = Membership::Ack {
        nonce,
        accepted: true,
        reason: AckReason::Ok,
    }
    .encode();
    let datagram = spoofer.subprotocol(ids::MEMBERSHIP, &[&accept]);
    spoofer.send(&datagram);
    wait_until(
        || {
            let json: serde_json::Value = serde_json::from_str(&b.channels_json()).unwrap();
            json["counters"]["unmatched_acks"].as_u64() == Some(1)
        },
        "the spoofed Ack is counted and ignored",
    );
    let refuse = Membership::Ack {
        nonce,
        accepted: false,
        reason: AckReason::Unauthorized,
    }
    .encode();
    let datagram = publisher.subprotocol(ids::MEMBERSHIP, &[&refuse]);
    publisher.send(&datagram);
    assert_eq!(rejected(waiting.join().unwrap()), AckReason::Unauthorized);
}

#[test]
fn tightening_or_deregistering_a_channel_evicts_its_subscribers() {
    let (a, b) = (started(""), started(""));
    link(&b, &a);
    let (open, gone) = (name("policy/open"), name("policy/gone"));
    a.register_channel(&open, ChannelConfig::default()).unwrap();
    a.register_channel(&gone, ChannelConfig::default()).unwrap();
    b.subscribe(a.node_id(), &open, None, None).unwrap();
    b.subscribe(a.node_id(), &gone, None, None).unwrap();
    let tightened = ChannelConfig {
        require_token: true,
        ..ChannelConfig::default()
    };
    assert_eq!(a.register_channel(&open, tightened).unwrap(), 1);
    assert_eq!(a.deregister_channel(&gone).unwrap(), 1);
    assert_eq!(a.publish(&open, &[b"x"], false).unwrap().attempted, 0);
    assert!(matches!(
        a.publish(&gone, &[b"x"], false),
        Err(ChannelError::Publish(_))
    ));
    assert!(nothing_for(&b, 300));
}

#[test]
fn a_subscribe_filter_sees_the_subscribers_announced_capabilities() {
    use net::mesh::capability::CapabilitySet;
    use net::mesh::channels::RequireTags;
    let (a, b) = (started(""), started(""));
    link(&b, &a);
    let ch = name("gpu/jobs");
    a.register_channel(
        &ch,
        ChannelConfig {
            subscribe_caps: Some(Arc::new(RequireTags::new(["gpu"]))),
            ..ChannelConfig::default()
        },
    )
    .unwrap();
    // Never announced: the filter fails closed.
    assert_eq!(
        rejected(b.subscribe(a.node_id(), &ch, None, None)),
        AckReason::Unauthorized
    );
    b.announce(CapabilitySet {
        tags: vec!["gpu".into()],
        ..CapabilitySet::default()
    })
    .unwrap();
    wait_until(
        || {
            a.find_nodes(&Default::default())
                .nodes
                .contains(&b.node_id())
        },
        "a indexes b's announcement",
    );
    b.subscribe(a.node_id(), &ch, None, None).unwrap();
    a.publish(&ch, &[b"job"], false).unwrap();
    assert_eq!(recv_n(&b, 1)[0].channel.as_ref(), Some(&ch));
}

#[test]
fn a_publisher_that_never_answers_times_out_and_a_cancel_ends_the_wait() {
    let b = started(r#","membership_ack_timeout_ms":300"#);
    let silent = RawPeer::connect(&b, 0x0ccc_0000_0000_0003, &PSK).expect("handshake");
    let ch = name("silent/feed");
    match b.subscribe(silent.node_id, &ch, None, None) {
        Err(ChannelError::Mesh(MeshError::Timeout)) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    // A cancelled wait returns at once, long before the timeout.
    let b = started(r#","membership_ack_timeout_ms":60000"#);
    let silent = RawPeer::connect(&b, 0x0ddd_0000_0000_0004, &PSK).expect("handshake");
    let token = net::cancel::CancelToken::new();
    let b = Arc::new(b);
    let waiting = {
        let (b, token, ch) = (b.clone(), token.clone(), ch.clone());
        std::thread::spawn(move || b.subscribe(silent.node_id, &ch, None, Some(&token)))
    };
    token.cancel();
    match waiting.join().unwrap() {
        Err(ChannelError::Mesh(MeshError::Cancelled)) => {}
        other => panic!("expected a cancellation, got {other:?}"),
    }
    // Subscribing to a node we have no session with fails at once.
    match b.subscribe(0x0eee_0000_0000_0005, &ch, None, None) {
        Err(ChannelError::Mesh(MeshError::UnknownPeer(_))) => {}
        other => panic!("expected an unknown peer, got {other:?}"),
    }
}
